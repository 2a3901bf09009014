package secitem

import (
	"errors"

	"github.com/secitemdb/secitemdb/internal/status"
)

// Status is an OSStatus: Apple's result code of a keychain call. A
// non-zero Status is an error; its text reads like
// "errSecItemNotFound (-25300): the item could not be found".
type Status int32

// The statuses secitemdb returns. Values are Apple's.
const (
	ErrUnimplemented         Status = -4     // errSecUnimplemented: a match key the class does not support, m_Policy, m_TrustedOnly
	ErrDiskFull              Status = -34    // errSecDiskFull
	ErrIO                    Status = -36    // errSecIO: the file could not be read or written
	ErrParam                 Status = -50    // errSecParam: a malformed dictionary (Error.Detail names the key)
	ErrAllocate              Status = -108   // errSecAllocate
	ErrNotAvailable          Status = -25291 // errSecNotAvailable: the store cannot be opened, or akpu without a passcode
	ErrReadOnly              Status = -25292 // errSecReadOnly: the store was opened read-only
	ErrAuthFailed            Status = -25293 // errSecAuthFailed: wrong passcode or device secret
	ErrDuplicateItem         Status = -25299 // errSecDuplicateItem: another item has the same primary key
	ErrItemNotFound          Status = -25300 // errSecItemNotFound: nothing matched
	ErrNoSuchAttr            Status = -25303 // errSecNoSuchAttr: an attribute the class does not have
	ErrInvalidItemRef        Status = -25304 // errSecInvalidItemRef
	ErrNoSuchClass           Status = -25306 // errSecNoSuchClass: an unknown class
	ErrInteractionNotAllowed Status = -25308 // errSecInteractionNotAllowed: the item's class key is not available (locked)
	ErrDecode                Status = -26275 // errSecDecode: an item or the file failed authentication
	ErrInternal              Status = -26276 // errSecInternal: an identity addressed by persistent reference cannot be updated
	ErrMissingEntitlement    Status = -34018 // errSecMissingEntitlement: an access group the caller is not entitled to
)

// Error returns the status's name, number and meaning.
func (s Status) Error() string { return status.Code(s).String() }

// Name returns Apple's name for s, for example "errSecItemNotFound".
func (s Status) Name() string { return status.Code(s).Name() }

// Error is the error every operation returns: the operation, its status,
// and a detail naming the key or value at fault. Detail never contains a
// secret (v_Data, key material, passcodes).
//
// errors.Is(err, ErrItemNotFound) and errors.As(err, &e) with
// e *secitem.Error both work on every error an operation returns.
type Error struct {
	Op     string // "SecItemAdd", "SecItemCopyMatching", "SecItemUpdate", "SecItemDelete", "Open", ...
	Status Status
	Detail string
}

// Error formats e as "Op: status: detail".
func (e *Error) Error() string {
	s := e.Op + ": " + e.Status.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the Status, so errors.Is(err, ErrXxx) works.
func (e *Error) Unwrap() error { return e.Status }

// StatusOf returns the status of err: 0 for nil, the Status carried by err,
// or ErrIO for an error from outside the library.
func StatusOf(err error) Status {
	if err == nil {
		return 0
	}
	var s Status
	if errors.As(err, &s) {
		return s
	}
	return ErrIO
}

// wrapErr converts an error of the lower layers into an *Error for op.
func wrapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		if e.Op == op {
			return e
		}
		return &Error{Op: op, Status: e.Status, Detail: e.Detail}
	}
	var se *status.Error
	if errors.As(err, &se) {
		return &Error{Op: op, Status: Status(se.Code), Detail: se.Detail}
	}
	return &Error{Op: op, Status: ErrIO, Detail: err.Error()}
}

func newErr(op string, s Status, detail string) error {
	return &Error{Op: op, Status: s, Detail: detail}
}
