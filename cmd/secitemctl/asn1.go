package main

import (
	"encoding/asn1"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/big"
	"strings"
	"unicode/utf8"

	"github.com/secitemdb/secitemdb/secitem"
)

var asn1Opts struct{ attr string }

func asn1Flags(fs *flag.FlagSet) {
	fs.StringVar(&asn1Opts.attr, "attr", "", "print this attribute (e.g. issr) of the item QUERY_JSON finds")
}

// cmdASN1 prints DER values as a tree, dumpasn1-style: offset, tag,
// length, then the decoded value. It accepts a sequence of values, so it
// prints the stored form of issr and subj (Name contents without the
// outer SEQUENCE) as well as full DER.
func cmdASN1(e *env, g *globals, args []string) error {
	var der []byte
	if asn1Opts.attr == "" {
		b, err := hex.DecodeString(strings.Join(strings.Fields(args[0]), ""))
		if err != nil {
			return usageErr("asn1 takes hexadecimal DER: " + err.Error())
		}
		der = b
	} else {
		q, db, err := openWithQuery(e, g, args[0], readOnly, true)
		if err != nil {
			return err
		}
		defer db.Close()
		q[secitem.ReturnAttributes] = true
		r, err := db.CopyMatching(q)
		if err != nil {
			return err
		}
		var item secitem.Dict
		switch r := r.(type) {
		case secitem.Dict:
			item = r
		case []any:
			if len(r) != 1 {
				return fmt.Errorf("the query matches %d items; asn1 --attr prints one item's attribute (narrow the query or drop m_Limit)", len(r))
			}
			item, _ = r[0].(secitem.Dict)
		}
		if item == nil {
			return fmt.Errorf("the query did not return attributes")
		}
		v, ok := item[asn1Opts.attr]
		if !ok {
			return fmt.Errorf("the item has no attribute %q", asn1Opts.attr)
		}
		if der, ok = v.([]byte); !ok {
			return fmt.Errorf("attribute %q is not data", asn1Opts.attr)
		}
	}
	return dumpASN1(e.stdout, der)
}

func dumpASN1(w io.Writer, der []byte) error {
	if len(der) == 0 {
		fmt.Fprintln(w, "(empty)")
		return nil
	}
	return dumpLevel(w, der, 0, 0)
}

var oidNames = map[string]string{
	"2.5.4.3": "commonName", "2.5.4.6": "countryName", "2.5.4.7": "localityName", "2.5.4.8": "stateOrProvinceName",
	"2.5.4.10": "organizationName", "2.5.4.11": "organizationalUnitName", "2.5.4.5": "serialNumber",
	"1.2.840.113549.1.9.1": "emailAddress", "1.2.840.10045.2.1": "ecPublicKey", "1.2.840.113549.1.1.1": "rsaEncryption",
	"1.3.101.112": "Ed25519", "1.2.840.10045.3.1.7": "prime256v1", "1.3.132.0.34": "secp384r1", "1.3.132.0.35": "secp521r1",
	"2.5.29.14": "subjectKeyIdentifier", "2.5.29.15": "keyUsage", "2.5.29.17": "subjectAltName", "2.5.29.19": "basicConstraints",
	"2.5.29.35": "authorityKeyIdentifier", "1.2.840.10045.4.3.2": "ecdsaWithSHA256", "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
}

var universalNames = map[int]string{
	1: "BOOLEAN", 2: "INTEGER", 3: "BIT STRING", 4: "OCTET STRING", 5: "NULL", 6: "OBJECT IDENTIFIER",
	10: "ENUMERATED", 12: "UTF8String", 16: "SEQUENCE", 17: "SET", 19: "PrintableString", 20: "T61String",
	22: "IA5String", 23: "UTCTime", 24: "GeneralizedTime", 30: "BMPString",
}

func dumpLevel(w io.Writer, b []byte, base, depth int) error {
	for off := 0; off < len(b); {
		var raw asn1.RawValue
		rest, err := asn1.Unmarshal(b[off:], &raw)
		if err != nil {
			return fmt.Errorf("not DER at offset %d: %v", base+off, err)
		}
		hdr := len(raw.FullBytes) - len(raw.Bytes)
		name := tagName(raw)
		indent := strings.Repeat("  ", depth)
		fmt.Fprintf(w, "%5d %02x %4d: %s%s", base+off, raw.FullBytes[0], len(raw.Bytes), indent, name)
		if raw.IsCompound {
			fmt.Fprintln(w, " {")
			if err := dumpLevel(w, raw.Bytes, base+off+hdr, depth+1); err != nil {
				return err
			}
			fmt.Fprintf(w, "%13s: %s}\n", "", indent)
		} else {
			fmt.Fprintln(w, valueText(raw))
		}
		off = len(b) - len(rest)
	}
	return nil
}

func tagName(raw asn1.RawValue) string {
	switch raw.Class {
	case asn1.ClassUniversal:
		if n, ok := universalNames[raw.Tag]; ok {
			return n
		}
		return fmt.Sprintf("[UNIVERSAL %d]", raw.Tag)
	case asn1.ClassContextSpecific:
		return fmt.Sprintf("[%d]", raw.Tag)
	case asn1.ClassApplication:
		return fmt.Sprintf("[APPLICATION %d]", raw.Tag)
	}
	return fmt.Sprintf("[PRIVATE %d]", raw.Tag)
}

func valueText(raw asn1.RawValue) string {
	if raw.Class != asn1.ClassUniversal {
		return " " + shortHex(raw.Bytes)
	}
	switch raw.Tag {
	case asn1.TagOID:
		var oid asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(raw.FullBytes, &oid); err != nil {
			return " " + shortHex(raw.Bytes)
		}
		if n, ok := oidNames[oid.String()]; ok {
			return fmt.Sprintf(" %s (%s)", n, strings.ReplaceAll(oid.String(), ".", " "))
		}
		return " " + strings.ReplaceAll(oid.String(), ".", " ")
	case asn1.TagInteger:
		if len(raw.Bytes) <= 8 {
			return " " + new(big.Int).SetBytes(raw.Bytes).String() + " (" + shortHex(raw.Bytes) + ")"
		}
		return " " + shortHex(raw.Bytes)
	case asn1.TagBoolean:
		if len(raw.Bytes) == 1 && raw.Bytes[0] != 0 {
			return " TRUE"
		}
		return " FALSE"
	case asn1.TagNull:
		return ""
	case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagIA5String, asn1.TagT61String, asn1.TagUTCTime, asn1.TagGeneralizedTime:
		if utf8.Valid(raw.Bytes) {
			return fmt.Sprintf(" '%s'", raw.Bytes)
		}
	}
	return " " + shortHex(raw.Bytes)
}

func shortHex(b []byte) string {
	if len(b) > 24 {
		return hex.EncodeToString(b[:24]) + "…"
	}
	return hex.EncodeToString(b)
}
