package secitem

import (
	fp "github.com/secitemdb/secitemdb/internal/failpoint"
	"github.com/secitemdb/secitemdb/internal/store"
	"github.com/secitemdb/secitemdb/query"
)

// AddManyForTest adds items in one transaction (benchmark set-up only).
func (db *DB) AddManyForTest(items []Dict) error {
	var plans []*query.Plan
	for _, d := range items {
		p, err := db.def.parse(query.Add, d)
		if err != nil {
			return err
		}
		if err := p.ApplyAddDefaults(db.now()); err != nil {
			return err
		}
		plans = append(plans, p)
	}
	return db.st.Update(func(tx *store.Tx) error {
		for _, p := range plans {
			if _, err := db.insert(tx, p.Class, p.Fields, p.Secret); err != nil {
				return err
			}
		}
		return nil
	})
}

// SetFailpoint makes the named step fail (nil clears every failpoint).
func SetFailpoint(f func(step string) error) { fp.Set(f) }

// RawRecordForTest and PutRawRecordForTest reach the stored bytes of an
// item (fault injection).
func (db *DB) RawRecordForTest(pref []byte) ([]byte, error) { return db.st.RawRecord(pref) }
func (db *DB) PutRawRecordForTest(pref, raw []byte) error   { return db.st.PutRawRecord(pref, raw) }
