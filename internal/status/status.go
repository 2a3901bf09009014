// Package status holds the OSStatus codes that every layer of secitemdb
// reports, and the one error type the lower layers return.
//
// The public package secitem re-exports these codes as secitem.Status and
// converts *Error into *secitem.Error, adding the name of the operation.
// Keeping the codes here lets query, protect and internal/store decide a
// status without importing the public package (arrows point down only).
package status

import (
	"errors"
	"fmt"
)

// Code is an Apple OSStatus value.
type Code int32

// The codes secitemdb returns. Values are Apple's (base/SecBase.h).
const (
	OK                    Code = 0
	Unimplemented         Code = -4
	DiskFull              Code = -34
	IO                    Code = -36
	Param                 Code = -50
	Allocate              Code = -108
	NotAvailable          Code = -25291
	ReadOnly              Code = -25292
	AuthFailed            Code = -25293
	DuplicateItem         Code = -25299
	ItemNotFound          Code = -25300
	NoSuchAttr            Code = -25303
	InvalidItemRef        Code = -25304
	NoSuchClass           Code = -25306
	InteractionNotAllowed Code = -25308
	Decode                Code = -26275
	Internal              Code = -26276
	MissingEntitlement    Code = -34018
)

type info struct{ name, text string }

var infos = map[Code]info{
	OK:                    {"errSecSuccess", "no error"},
	Unimplemented:         {"errSecUnimplemented", "function or operation not implemented"},
	DiskFull:              {"errSecDiskFull", "the disk is full"},
	IO:                    {"errSecIO", "an I/O error occurred"},
	Param:                 {"errSecParam", "one or more parameters passed to the function were not valid"},
	Allocate:              {"errSecAllocate", "failed to allocate memory"},
	NotAvailable:          {"errSecNotAvailable", "no keychain is available"},
	ReadOnly:              {"errSecReadOnly", "read only error"},
	AuthFailed:            {"errSecAuthFailed", "the user name or passphrase you entered is not correct"},
	DuplicateItem:         {"errSecDuplicateItem", "the specified item already exists in the keychain"},
	ItemNotFound:          {"errSecItemNotFound", "the item could not be found"},
	NoSuchAttr:            {"errSecNoSuchAttr", "the specified attribute does not exist"},
	InvalidItemRef:        {"errSecInvalidItemRef", "the specified item is no longer valid"},
	NoSuchClass:           {"errSecNoSuchClass", "the specified item class does not exist"},
	InteractionNotAllowed: {"errSecInteractionNotAllowed", "user interaction is not allowed"},
	Decode:                {"errSecDecode", "unable to decode the provided data"},
	Internal:              {"errSecInternal", "an internal error occurred"},
	MissingEntitlement:    {"errSecMissingEntitlement", "a required entitlement is missing"},
}

// Name returns Apple's name for c, for example "errSecItemNotFound", or
// "OSStatus(<n>)" for a code this package does not know.
func (c Code) Name() string {
	if i, ok := infos[c]; ok {
		return i.name
	}
	return fmt.Sprintf("OSStatus(%d)", int32(c))
}

// Text returns a short lowercase description of c.
func (c Code) Text() string {
	if i, ok := infos[c]; ok {
		return i.text
	}
	return "unknown status"
}

// String formats c as "errSecItemNotFound (-25300): the item could not be found".
func (c Code) String() string {
	return fmt.Sprintf("%s (%d): %s", c.Name(), int32(c), c.Text())
}

// Known reports whether c is one of the codes listed above.
func Known(c Code) bool {
	_, ok := infos[c]
	return ok
}

// Error is a status with a detail naming what was at fault. Detail never
// holds secret values.
type Error struct {
	Code   Code
	Detail string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Detail
}

// New returns an *Error with a formatted detail.
func New(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Detail: fmt.Sprintf(format, args...)}
}

// Of returns the status carried by err: OK for nil, the code of the first
// *Error in err's chain, and Internal otherwise.
func Of(err error) Code {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}
