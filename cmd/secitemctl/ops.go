package main

import (
	"errors"
	"strings"

	"github.com/secitemdb/secitemdb/secitem"
)

// The four operations. The store is opened writable for all of them
// (Delete too: it needs no key, but it writes), and unlocked when it has a
// passcode, except for Delete, which the device lets run while locked.

func cmdAdd(e *env, g *globals, args []string) error {
	d, db, err := openWithQuery(e, g, args[0], readWrite, true)
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := db.Add(d)
	if err != nil {
		return err
	}
	if r != nil {
		return printJSON(e, r)
	}
	return nil
}

func cmdFind(e *env, g *globals, args []string) error {
	d, db, err := openWithQuery(e, g, args[0], readWrite, true)
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := db.CopyMatching(d)
	if err != nil {
		return explainHint(err, "", args[0])
	}
	if r == nil {
		r = map[string]any{} // found, nothing asked for: print an empty object
	}
	return printJSON(e, r)
}

func cmdUpdate(e *env, g *globals, args []string) error {
	q, err := decodeDict(args[0])
	if err != nil {
		return err
	}
	a, err := decodeDict(args[1])
	if err != nil {
		return err
	}
	db, err := openStore(e, g, readWrite, true)
	if err != nil {
		return err
	}
	defer db.Close()
	return explainHint(db.Update(q, a), "update", args[0])
}

func cmdDelete(e *env, g *globals, args []string) error {
	d, db, err := openWithQuery(e, g, args[0], readWrite, false)
	if err != nil {
		return err
	}
	defer db.Close()
	return explainHint(db.Delete(d), "delete", args[0])
}

// openWithQuery decodes a command's query argument and opens the store:
// how every command that takes a query starts. The caller closes the store.
func openWithQuery(e *env, g *globals, arg string, mode access, needKeys bool) (secitem.Dict, *secitem.DB, error) {
	q, err := decodeDict(arg)
	if err != nil {
		return nil, nil, err
	}
	db, err := openStore(e, g, mode, needKeys)
	if err != nil {
		return nil, nil, err
	}
	return q, db, nil
}

// explainHint adds, to an errSecItemNotFound of operation op ("" for
// find), the explain command that tells why nothing matched the query.
func explainHint(err error, op, query string) error {
	if !errors.Is(err, secitem.ErrItemNotFound) {
		return err
	}
	cmd := "secitemctl explain "
	if op != "" {
		cmd += "--op " + op + " "
	}
	return hintError{err, "run `" + cmd + shellQuote(query) + "` to see why each item does not match"}
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
