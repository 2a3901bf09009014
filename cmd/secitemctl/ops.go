package main

import (
	"errors"

	"github.com/secitemdb/secitemdb/secitem"
)

// The four operations. The store is opened writable for all of them
// (Delete too: it needs no key, but it writes), and unlocked when it has a
// passcode, except for Delete, which the device lets run while locked.

func cmdAdd(e *env, g *globals, args []string) error {
	d, err := decodeDict(args[0])
	if err != nil {
		return err
	}
	db, err := openStore(e, g, readWrite, true)
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
	d, err := decodeDict(args[0])
	if err != nil {
		return err
	}
	db, err := openStore(e, g, readWrite, true)
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := db.CopyMatching(d)
	if errors.Is(err, secitem.ErrItemNotFound) {
		return hintError{err, "run `secitemctl explain '" + args[0] + "'` to see why each item does not match"}
	}
	if err != nil {
		return err
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
	err = db.Update(q, a)
	if errors.Is(err, secitem.ErrItemNotFound) {
		return hintError{err, "run `secitemctl explain --op update '" + args[0] + "'` to see why each item does not match"}
	}
	return err
}

func cmdDelete(e *env, g *globals, args []string) error {
	d, err := decodeDict(args[0])
	if err != nil {
		return err
	}
	db, err := openStore(e, g, readWrite, false)
	if err != nil {
		return err
	}
	defer db.Close()
	err = db.Delete(d)
	if errors.Is(err, secitem.ErrItemNotFound) {
		return hintError{err, "run `secitemctl explain --op delete '" + args[0] + "'` to see why each item does not match"}
	}
	return err
}
