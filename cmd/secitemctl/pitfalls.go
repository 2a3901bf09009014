package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/secitemdb/secitemdb/pitfalls"
	"github.com/secitemdb/secitemdb/secitem"
)

func init() {
	commands["pitfalls"] = &command{
		args:    "list | run NAME|NUMBER|all",
		summary: "the keychain pitfalls, narrated step by step with the call trace",
		run:     cmdPitfalls,
		nargs:   [2]int{1, 2},
	}
}

// cmdPitfalls lists the pitfalls or runs their scenarios, each on a fresh
// temporary store, in both flavors where they differ (or in the one
// --flavor names).
func cmdPitfalls(e *env, g *globals, args []string) error {
	switch {
	case args[0] == "list" && len(args) == 1:
		tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
		for _, p := range pitfalls.All() {
			fmt.Fprintf(tw, "%d\t%s\t%s\n", p.Number, p.Name, p.Summary)
		}
		return tw.Flush()
	case args[0] == "run" && len(args) == 2:
	default:
		return usageErr("usage: secitemctl pitfalls list | run NAME|NUMBER|all")
	}
	var todo []*pitfalls.Pitfall
	if args[1] == "all" {
		todo = pitfalls.All()
	} else {
		p, ok := pitfalls.Find(args[1])
		if !ok {
			return usageErr(fmt.Sprintf("no pitfall %q (run \"secitemctl pitfalls list\")", args[1]))
		}
		todo = []*pitfalls.Pitfall{p}
	}
	opts := pitfalls.RunOptions{Trace: true}
	switch g.flavor {
	case "data-protection":
		opts.Flavors = []secitem.Flavor{secitem.DataProtection}
	case "file-based":
		opts.Flavors = []secitem.Flavor{secitem.FileBased}
	}
	for i, p := range todo {
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		if err := p.Run(e.stdout, opts); err != nil {
			return err
		}
	}
	return nil
}
