package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/secitemdb/secitemdb/identity"
	"github.com/secitemdb/secitemdb/secitem"
)

// describeRef turns the Go objects r_Ref returns into printable JSON.
func describeRef(v any) any {
	switch x := v.(type) {
	case *x509.Certificate:
		return map[string]any{"$certificate": certSummary(x)}
	case *identity.Identity:
		return map[string]any{"$identity": map[string]any{"certificate": certSummary(x.Certificate), "key": keySummary(x.PrivateKey)}}
	case crypto.Signer:
		return map[string]any{"$key": keySummary(x)}
	case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		return map[string]any{"$key": keySummary(x)}
	}
	return map[string]any{"$object": fmt.Sprintf("%T", v)}
}

func certSummary(c *x509.Certificate) map[string]any {
	return map[string]any{
		"subject": c.Subject.String(), "issuer": c.Issuer.String(),
		"serial":    hex.EncodeToString(c.SerialNumber.Bytes()),
		"notBefore": c.NotBefore.UTC(), "notAfter": c.NotAfter.UTC(),
	}
}

func keySummary(k any) map[string]any {
	out := map[string]any{}
	if tk, ok := k.(*secitem.TokenKey); ok {
		out["token"] = secitem.TokenIDSecureEnclave
		k = tk.Public()
	}
	info, err := identity.InspectKey(k)
	if err != nil {
		if s, ok := k.(crypto.Signer); ok {
			if info, err = identity.InspectKey(s.Public()); err == nil {
				info.Private = true
			}
		}
	}
	if err != nil {
		out["type"] = fmt.Sprintf("%T", k)
		return out
	}
	out["type"] = keyTypeName(info.Type)
	out["bits"] = info.Bits
	out["private"] = info.Private || out["token"] != nil
	return out
}

func keyTypeName(t int64) string {
	switch t {
	case identity.KeyTypeRSA:
		return "RSA"
	case identity.KeyTypeEC:
		return "EC"
	case identity.KeyTypeEd25519:
		return "Ed25519"
	}
	return fmt.Sprint(t)
}

// formatValue prints one attribute value for tables.
func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", x)
	case []byte:
		if len(x) == 0 {
			return "<empty data>"
		}
		return "<" + hex.EncodeToString(x) + ">"
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case int64:
		return fmt.Sprint(x)
	}
	b, _ := jsondictCompact(v)
	return b
}

func jsondictCompact(v any) (string, error) {
	var buf bytes.Buffer
	if err := printJSON(&env{stdout: &buf}, v); err != nil {
		return fmt.Sprintf("<%T>", v), err
	}
	return strings.Join(strings.Fields(buf.String()), " "), nil
}

// secretCodes are hidden by dump unless --show-secrets.
var secretCodes = []string{secitem.ValueData, secitem.DataInetExtraNotes, secitem.DataInetExtraHistory,
	secitem.DataInetExtraClientDefined0, secitem.DataInetExtraClientDefined1, secitem.DataInetExtraClientDefined2, secitem.DataInetExtraClientDefined3}

var dumpOpts struct {
	class       string
	showSecrets bool
}

func dumpFlags(fs *flag.FlagSet) {
	fs.StringVar(&dumpOpts.class, "class", "", "only this class (genp, inet, cert, keys)")
	fs.BoolVar(&dumpOpts.showSecrets, "show-secrets", false, "print secrets too")
}

// cmdDump prints every item of every class (or one class) with every
// attribute, in every access group unless --group limits it: the "dump
// everything and compare" step of debugging a lost item (pitfalls.md 8).
func cmdDump(e *env, g *globals, args []string) error {
	classes := []string{secitem.ClassGenericPassword, secitem.ClassInternetPassword, secitem.ClassCertificate, secitem.ClassKey}
	if dumpOpts.class != "" {
		if !slices.Contains(classes, dumpOpts.class) {
			return usageErr("--class must be genp, inet, cert or keys")
		}
		classes = []string{dumpOpts.class}
	}
	db, err := openStore(e, g, readOnly, true)
	if err != nil {
		return err
	}
	defer db.Close()
	all := map[string]any{}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	for _, class := range classes {
		var items []any
		n := 0
		err := db.Items(class, true, func(item secitem.Dict, ierr error) bool {
			if len(g.groups) > 0 && ierr == nil && !slices.Contains(g.groups, fmt.Sprint(item[secitem.AttrAccessGroup])) {
				return true
			}
			n++
			if ierr != nil {
				item["$error"] = secitem.StatusOf(ierr).Name()
			} else if !dumpOpts.showSecrets {
				for _, code := range secretCodes {
					if b, ok := item[code].([]byte); ok {
						item[code] = map[string]any{"$hidden": int64(len(b))}
					}
				}
			}
			items = append(items, map[string]any(item))
			return true
		})
		if err != nil {
			return err
		}
		all[class] = items
		if g.output == "json" {
			continue
		}
		fmt.Fprintf(tw, "%s: %d item%s\n", class, n, plural(n))
		for i, it := range items {
			d := it.(map[string]any)
			fmt.Fprintf(tw, "  [%d]\tpersistent ref %x\n", i+1, d[secitem.ValuePersistentRef])
			if s, ok := d["$error"]; ok {
				fmt.Fprintf(tw, "  \t%s: not readable in this state\n", s)
				continue
			}
			keys := make([]string, 0, len(d))
			for k := range d {
				if k != secitem.Class && k != secitem.ValuePersistentRef {
					keys = append(keys, k)
				}
			}
			sort.Strings(keys)
			for _, k := range keys {
				v := d[k]
				if h, ok := v.(map[string]any); ok && h["$hidden"] != nil {
					fmt.Fprintf(tw, "  \t%s\t<hidden: %d bytes; --show-secrets prints it>\n", k, h["$hidden"])
					continue
				}
				fmt.Fprintf(tw, "  \t%s\t%s\n", k, formatValue(v))
			}
		}
	}
	if g.output == "json" {
		return printJSON(e, all)
	}
	return tw.Flush()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// cmdIdentities prints each identity, then the certificates and private
// keys that pair with nothing (pitfalls.md 4: compare klbl with pkhh).
func cmdIdentities(e *env, g *globals, args []string) error {
	db, err := openStore(e, g, readOnly, true)
	if err != nil {
		return err
	}
	defer db.Close()
	var certs, keys []secitem.Dict
	collect := func(class string, dst *[]secitem.Dict) error {
		return db.Items(class, true, func(item secitem.Dict, err error) bool {
			if err == nil {
				*dst = append(*dst, item)
			}
			return true
		})
	}
	if err := collect(secitem.ClassCertificate, &certs); err != nil {
		return err
	}
	if err := collect(secitem.ClassKey, &keys); err != nil {
		return err
	}
	privKeys := map[string][]secitem.Dict{}
	for _, k := range keys {
		if k[secitem.AttrKeyClass] == int64(identity.KeyClassPrivate) {
			l := string(bytesOf(k[secitem.AttrApplicationLabel]))
			privKeys[l] = append(privKeys[l], k)
		}
	}
	type row struct {
		kind, label string
		fields      [][2]string
	}
	var rows []row
	paired := map[string]bool{}
	var unpairedCerts []secitem.Dict
	for _, c := range certs {
		pkhh := bytesOf(c[secitem.AttrPublicKeyHash])
		ks := privKeys[string(pkhh)]
		if pkhh == nil || len(ks) == 0 {
			unpairedCerts = append(unpairedCerts, c)
			continue
		}
		paired[string(pkhh)] = true
		for _, k := range ks {
			rows = append(rows, row{"identity", fmt.Sprint(c[secitem.AttrLabel]), append(certFields(c), keyFields(k)...)})
		}
	}
	for _, c := range unpairedCerts {
		rows = append(rows, row{"certificate without private key", fmt.Sprint(c[secitem.AttrLabel]), certFields(c)})
	}
	for _, k := range keys {
		if k[secitem.AttrKeyClass] == int64(identity.KeyClassPrivate) && !paired[string(bytesOf(k[secitem.AttrApplicationLabel]))] {
			rows = append(rows, row{"private key without certificate", fmt.Sprint(k[secitem.AttrLabel]), keyFields(k)})
		}
	}
	if g.output == "json" {
		var out []any
		for _, r := range rows {
			m := map[string]any{"kind": r.kind, "label": r.label}
			for _, f := range r.fields {
				m[f[0]] = f[1]
			}
			out = append(out, m)
		}
		if out == nil {
			out = []any{}
		}
		return printJSON(e, out)
	}
	if len(rows) == 0 {
		fmt.Fprintln(e.stdout, "no certificates or private keys")
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s %q\n", r.kind, r.label)
		for _, f := range r.fields {
			fmt.Fprintf(tw, "  %s\t%s\n", f[0], f[1])
		}
	}
	return tw.Flush()
}

func bytesOf(v any) []byte {
	b, _ := v.([]byte)
	return b
}

func certFields(c secitem.Dict) [][2]string {
	out := [][2]string{}
	cert, err := x509.ParseCertificate(bytesOf(c[secitem.ValueData]))
	if err != nil {
		out = append(out, [2]string{"certificate", "<raw data that does not parse>"})
	} else {
		out = append(out,
			[2]string{"subject", cert.Subject.String()},
			[2]string{"issuer", cert.Issuer.String()},
			[2]string{"serial", hex.EncodeToString(bytesOf(c[secitem.AttrSerialNumber]))},
			[2]string{"valid", cert.NotBefore.UTC().Format(time.RFC3339) + " to " + cert.NotAfter.UTC().Format(time.RFC3339)},
		)
	}
	pkhh := "<none: added as raw data?>"
	if b := bytesOf(c[secitem.AttrPublicKeyHash]); b != nil {
		pkhh = hex.EncodeToString(b)
	}
	return append(out, [2]string{"pkhh", pkhh})
}

func keyFields(k secitem.Dict) [][2]string {
	typ, _ := k[secitem.AttrKeyType].(int64)
	bits, _ := k[secitem.AttrKeySizeInBits].(int64)
	desc := fmt.Sprintf("%s %d", keyTypeName(typ), bits)
	if k[secitem.AttrTokenID] == secitem.TokenIDSecureEnclave {
		desc += " (Secure Enclave)"
	}
	return [][2]string{{"key", desc}, {"klbl", hex.EncodeToString(bytesOf(k[secitem.AttrApplicationLabel]))}}
}
