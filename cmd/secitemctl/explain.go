package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/secitemdb/secitemdb/secitem"
)

func init() {
	commands["explain"] = &command{args: "[--op OP] QUERY_JSON", summary: "say why each item of the query's class does or does not match", flags: explainFlags, run: cmdExplain, nargs: [2]int{1, 1}}
}

var explainOpts struct{ op string }

func explainFlags(fs *flag.FlagSet) {
	fs.StringVar(&explainOpts.op, "op", "find", "the operation whose query it is: find (SecItemCopyMatching), update or delete")
}

// explainOps maps --op to the library's operation names.
var explainOps = map[string]string{"find": secitem.OpCopyMatching, "update": secitem.OpUpdate, "delete": secitem.OpDelete}

// explainShown is how many items the table shows; -o json lists all.
const explainShown = 20

// cmdExplain explains a query (of CopyMatching, or of the operation --op
// names) against every item of its class,
// as the caller given by --group and --app-id would run it (the operator's
// view: items in other groups are listed with the group they are in).
func cmdExplain(e *env, g *globals, args []string) error {
	q, db, err := openWithQuery(e, g, args[0], readWrite, true)
	if err != nil {
		return err
	}
	defer db.Close()
	ent := secitem.Entitlements{KeychainAccessGroups: g.groups, ApplicationIdentifier: g.appID}
	if len(ent.KeychainAccessGroups) == 0 && ent.ApplicationIdentifier == "" {
		ent.KeychainAccessGroups = []string{secitem.DefaultAccessGroup}
	}
	op, ok := explainOps[explainOpts.op]
	if !ok {
		return usageErr("--op is find, update or delete, not " + explainOpts.op)
	}
	ex, err := db.ExplainOperationAs(ent, op, q)
	if err != nil {
		return err
	}
	if g.output == "json" {
		return printExplanationJSON(e, ex)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if ex.Operation != secitem.OpCopyMatching {
		fmt.Fprintf(tw, "operation\t%s\n", ex.Operation)
	}
	fmt.Fprintf(tw, "query\t%s\n", ex.Query)
	if len(ex.Ignored) > 0 {
		fmt.Fprintf(tw, "ignored keys\t%s (accepted, but they filter nothing)\n", strings.Join(ex.Ignored, ", "))
	}
	for i, f := range ex.Implicit {
		label := ""
		if i == 0 {
			label = "implicit filters"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, f)
	}
	misses := len(ex.Items) - ex.Matches
	fmt.Fprintf(tw, "result\t%d item%s match, %d do%s not\n", ex.Matches, plural(ex.Matches), misses, map[bool]string{true: "es", false: ""}[misses == 1])
	for i, it := range ex.Items {
		if i == explainShown {
			fmt.Fprintf(tw, "\t… %d more (-o json lists every item)\n", len(ex.Items)-explainShown)
			break
		}
		name := it.Summary
		if name == "" {
			name = fmt.Sprintf("item %x", it.PersistentRef)
		}
		if it.Matches {
			fmt.Fprintf(tw, "\nmatch\t%s\n", name)
		} else {
			fmt.Fprintf(tw, "\nmiss\t%s\n", name)
		}
		for _, r := range it.Reasons {
			fmt.Fprintf(tw, "\t- %s\n", r.Text)
		}
		for _, n := range it.Notes {
			fmt.Fprintf(tw, "\tnote: %s\n", n)
		}
	}
	for i, u := range ex.Undecided {
		label := ""
		if i == 0 {
			label = "\nundecided"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, u)
	}
	return tw.Flush()
}

func printExplanationJSON(e *env, ex *secitem.Explanation) error {
	type reason struct {
		Kind string `json:"kind"`
		Attr string `json:"attr,omitempty"`
		Text string `json:"text"`
	}
	type item struct {
		PersistentRef map[string][]byte `json:"v_PersistentRef"`
		Summary       string            `json:"summary,omitempty"`
		Matches       bool              `json:"matches"`
		Reasons       []reason          `json:"reasons,omitempty"`
		Notes         []string          `json:"notes,omitempty"`
	}
	out := struct {
		Operation string   `json:"operation"`
		Class     string   `json:"class"`
		Query     string   `json:"query"`
		Implicit  []string `json:"implicit"`
		Ignored   []string `json:"ignored,omitempty"`
		Matches   int      `json:"matches"`
		Items     []item   `json:"items"`
		Undecided []string `json:"undecided,omitempty"`
	}{Operation: ex.Operation, Class: ex.Class, Query: ex.Query, Implicit: ex.Implicit, Ignored: ex.Ignored, Matches: ex.Matches, Items: []item{}, Undecided: ex.Undecided}
	for _, it := range ex.Items {
		x := item{PersistentRef: map[string][]byte{"$data": it.PersistentRef}, Summary: it.Summary, Matches: it.Matches, Notes: it.Notes}
		for _, r := range it.Reasons {
			x.Reasons = append(x.Reasons, reason{Kind: r.Kind, Attr: r.Attr, Text: r.Text})
		}
		out.Items = append(out.Items, x)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, strings.TrimSpace(string(b)))
	return err
}
