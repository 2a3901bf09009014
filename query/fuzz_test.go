package query

import (
	"errors"
	"flag"
	"testing"

	"github.com/secitemdb/secitemdb/internal/fuzzcorpus"
	"github.com/secitemdb/secitemdb/internal/jsondict"
	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/schema"
)

var writeCorpus = flag.Bool("write-corpus", false, "rewrite the fuzz seed corpora")

var parseSeeds = []string{
	`{"class":"genp","svce":"s","acct":"a","v_Data":{"$data":"cHc="},"r_Attributes":true}`,
	`{"class":"genp","svce":"s","m_Limit":"m_LimitAll","r_Data":true,"r_PersistentRef":true}`,
	`{"class":"inet","srvr":"h","ptcl":"htps","port":443,"m_HostOrSubdomainOfHost":"h"}`,
	`{"class":"cert","issr":{"$data":"MAA="},"m_Issuers":[{"$data":"MAA="}],"m_ValidOnDate":null}`,
	`{"class":"keys","kcls":"1","type":"73","bsiz":256,"atag":"t","sdat":{"$date":"2001-01-01T00:00:00Z"}}`,
	`{"class":"idnt","labl":"x","m_EmailAddressIfPresent":"a@b"}`,
	`{"v_PersistentRef":{"$data":"Z2VucAAAAAAAAAAAAAAAAAAAAAA="}}`,
	`{"class":"genp","sync":"syna","tomb":1,"u_Tomb":true,"nleg":true,"f_x":1}`,
	`{"class":"genp","zzzz":1,"m_Foo":1,"u_AuthUI":"u_AuthUIS","accc":"ck","pdmn":"ak"}`,
	`{"class":5}`, `{}`, `{"class":"apls"}`,
}

// FuzzParse decodes a JSON dictionary and parses it for every operation
// and flavor, and as an update's attributes: it must never panic, and
// every error must be a *status.Error with a dictionary status.
func FuzzParse(f *testing.F) {
	if *writeCorpus {
		var seeds [][]any
		for _, s := range parseSeeds {
			seeds = append(seeds, []any{[]byte(s)})
		}
		if err := fuzzcorpus.Write(".", "FuzzParse", seeds...); err != nil {
			f.Fatal(err)
		}
	}
	fuzzcorpus.Require(f, "FuzzParse")
	allowed := map[status.Code]bool{status.Param: true, status.NoSuchAttr: true, status.NoSuchClass: true, status.Unimplemented: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := jsondict.Decode(data)
		if err != nil {
			return
		}
		for _, op := range []Op{Add, Search, Update, Delete} {
			for _, fl := range []Flavor{DataProtection, FileBased} {
				p, err := Parse(op, fl, d)
				var se *status.Error
				if err != nil {
					if !errors.As(err, &se) || !allowed[se.Code] {
						t.Fatalf("%v %v: error %v is not a dictionary status", op, fl, err)
					}
					continue
				}
				if p.Class == nil {
					t.Fatal("a plan without a class")
				}
				_ = p.ResolveAccess([]string{"G"})
				if op == Add {
					_ = p.ApplyAddDefaults(schema.ReferenceDate)
				}
				items := []Item{{Class: p.Class.Code, Attrs: p.Fields, Secret: p.Secret}}
				_ = Shape[map[string]any](p, items)
			}
		}
		for _, c := range schema.Classes() {
			if _, err := ParseChanges(c, d); err != nil {
				var se *status.Error
				if !errors.As(err, &se) || !allowed[se.Code] {
					t.Fatalf("ParseChanges: %v", err)
				}
			}
		}
	})
}
