package secitem

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"

	"github.com/secitemdb/secitemdb/internal/status"
	"github.com/secitemdb/secitemdb/internal/store"
	"github.com/secitemdb/secitemdb/protect"
	"github.com/secitemdb/secitemdb/schema"
)

// maxBackupRecord bounds one item in a backup, so a crafted length cannot
// make Restore allocate without limit.
const maxBackupRecord = 80 << 20

// Backup writes a portable, password-protected copy of every item that
// may leave this device to w, and returns how many items it wrote. Items
// of the ThisDeviceOnly classes (aku, cku, dku, akpu), token-protected keys
// and tombstones stay behind, as on a device. The backup has its own fresh
// file key, wrapped under a key derived from password with argon2id (the
// store's passcode cost); nothing in it depends on this device. The store
// must be unlocked (items of an unavailable class cannot be read:
// ErrInteractionNotAllowed). progress, when not nil, is called with the
// count of items visited so far and the number of items in the store; see
// DB.Restore for how it is called.
func (db *DB) Backup(w io.Writer, password []byte, progress func(done, total int)) (n int, err error) {
	tr := db.startTrace("Backup")
	defer func() { tr.end(nil, err) }()
	if len(password) == 0 {
		return 0, newErr("Backup", ErrParam, "a backup needs a password")
	}
	var pump *progressPump
	total := 0
	if progress != nil {
		pump = startProgress(func(done int) { progress(done, total) })
	}
	n, err = db.backup(w, password, pump, &total)
	pump.finish()
	return n, err
}

func (db *DB) backup(w io.Writer, password []byte, pump *progressPump, total *int) (n int, err error) {
	leave, err := db.enter()
	if err != nil {
		return 0, wrapErr("Backup", err)
	}
	defer leave()
	if st, err := db.st.Stats(); err == nil {
		for _, m := range st.Items {
			for _, k := range m {
				*total += k
			}
		}
	}
	bw, err := protect.NewBackupWriter(w, password, db.passcodeCost())
	if err != nil {
		return 0, wrapErr("Backup", err)
	}
	buf := bufio.NewWriter(bw)
	seen := 0
	err = db.st.View(func(tx *store.Tx) error {
		for _, c := range schema.Classes() {
			err := tx.Find(store.Query{Class: c}, func(r *store.Record) (bool, error) {
				seen++
				defer pump.report(seen)
				if pump.failed() {
					return false, errProgressPanicked
				}
				if prot, ok := db.st.Keybag().ClassOf(r.KeyID); ok && prot.ThisDeviceOnly() {
					return true, nil
				}
				attrs, secret, err := tx.Open(r, true)
				if err != nil {
					return false, err
				}
				if t, _ := attrs.Get(AttrTombstone); t.Num != 0 {
					return true, nil
				}
				if _, token := attrs.Get(AttrTokenID); token {
					return true, nil
				}
				rec := store.EncodeItem(c, attrs.Delete(AttrSHA1), secret)
				if _, err := buf.Write(binary.AppendUvarint(nil, uint64(len(rec)))); err != nil {
					return false, err
				}
				if _, err := buf.Write(rec); err != nil {
					return false, err
				}
				if err := failpoint("backup:item-written"); err != nil {
					return false, err
				}
				n++
				return true, nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = buf.Flush()
	}
	if err == nil {
		err = bw.Close()
	}
	return n, wrapErr("Backup", err)
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Restored int // items added
	Skipped  int // items whose primary key was already taken here
}

// Restore adds the items of a backup made by Backup, in one transaction:
// either every item is restored or, if the backup is damaged, tampered
// with or opened with the wrong password, none is (ErrDecode,
// ErrAuthFailed). Items keep their attributes and dates and get fresh
// keys and new persistent references; an item whose primary key is already
// taken is skipped, never overwritten.
//
// progress, when not nil, is called with the count of items processed so
// far. It runs on a goroutine of its own, one call at a time, while the
// operation goes on without waiting for it, so it may call back into the
// DB (a write it makes waits for the restore to commit). Counts only grow;
// when progress is slower than the operation some are skipped, but the
// final count is always delivered before Restore returns. A panic in
// progress stops the operation (a restore is rolled back) and is raised
// again in the caller's goroutine.
func (db *DB) Restore(r io.Reader, password []byte, progress func(done int)) (res RestoreResult, err error) {
	tr := db.startTrace("Restore")
	defer func() { tr.end(nil, err) }()
	var pump *progressPump
	if progress != nil {
		pump = startProgress(progress)
	}
	res, err = db.restore(r, password, pump)
	pump.finish()
	return res, err
}

func (db *DB) restore(r io.Reader, password []byte, pump *progressPump) (res RestoreResult, err error) {
	leave, err := db.enter()
	if err != nil {
		return res, wrapErr("Restore", err)
	}
	defer leave()
	br, err := protect.NewBackupReader(r, password)
	switch {
	case errors.Is(err, protect.ErrWrongPassword):
		return res, newErr("Restore", ErrAuthFailed, "wrong backup password")
	case err != nil:
		return res, newErr("Restore", ErrDecode, "the backup is damaged or was tampered with")
	}
	in := bufio.NewReader(br)
	err = db.st.Update(func(tx *store.Tx) error {
		res = RestoreResult{}
		for done := 0; ; done++ {
			l, err := binary.ReadUvarint(in)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil || l > maxBackupRecord {
				return backupDamaged(err)
			}
			rec := make([]byte, l)
			if _, err := io.ReadFull(in, rec); err != nil {
				return backupDamaged(err)
			}
			c, fields, secret, err := store.DecodeItem(rec)
			if err != nil {
				return status.New(status.Decode, "a backup item does not decode")
			}
			if pdmn, _ := fields.Get(AttrAccessible); !migratable(pdmn.Str) {
				return status.New(status.Decode, "the backup holds an item of class %q, which never leaves its device", pdmn.Str)
			}
			_, err = db.insert(tx, c, fields, secret)
			switch status.Of(err) {
			case status.OK:
				res.Restored++
			case status.DuplicateItem:
				res.Skipped++
			default:
				return err
			}
			if err := failpoint("restore:item-added"); err != nil {
				return err
			}
			pump.report(done + 1)
			if pump.failed() {
				return errProgressPanicked
			}
		}
	})
	if err != nil {
		return RestoreResult{}, wrapErr("Restore", err)
	}
	return res, nil
}

// errProgressPanicked stops an operation whose progress function panicked;
// the pump re-raises the panic itself.
var errProgressPanicked = status.New(status.Internal, "the progress function panicked")

func backupDamaged(err error) error {
	if errors.Is(err, protect.ErrBackupCorrupt) || errors.Is(err, io.ErrUnexpectedEOF) || err == nil {
		return status.New(status.Decode, "the backup is damaged or was tampered with")
	}
	return status.New(status.Decode, "the backup is damaged or was tampered with (%v)", err)
}

func migratable(pdmn string) bool {
	p, ok := protect.ParseClass(pdmn)
	return ok && !p.ThisDeviceOnly()
}

func (db *DB) passcodeCost() protect.KDFCost {
	if db.kdfCost != nil {
		return *db.kdfCost
	}
	return protect.DefaultKDFCost()
}
