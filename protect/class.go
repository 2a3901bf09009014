package protect

// Class is a data protection class: the class key an item's key is
// wrapped by. Its Code is the value of the item's pdmn attribute.
type Class uint8

// The protection classes. Their numbers are stored in the keybag; never
// renumber them.
const (
	AK   Class = 1 // kSecAttrAccessibleWhenUnlocked, "ak"
	CK   Class = 2 // kSecAttrAccessibleAfterFirstUnlock, "ck"
	DK   Class = 3 // kSecAttrAccessibleAlways, "dk"
	AKU  Class = 4 // kSecAttrAccessibleWhenUnlockedThisDeviceOnly, "aku"
	CKU  Class = 5 // kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly, "cku"
	DKU  Class = 6 // kSecAttrAccessibleAlwaysThisDeviceOnly, "dku"
	AKPU Class = 7 // kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly, "akpu"
)

// AllClasses lists every protection class in number order.
var AllClasses = []Class{AK, CK, DK, AKU, CKU, DKU, AKPU}

var classCodes = [...]string{AK: "ak", CK: "ck", DK: "dk", AKU: "aku", CKU: "cku", DKU: "dku", AKPU: "akpu"}

// Code returns the pdmn value of c, for example "ak".
func (c Class) Code() string {
	if c < AK || c > AKPU {
		return ""
	}
	return classCodes[c]
}

// String returns c's code.
func (c Class) String() string { return c.Code() }

// ParseClass returns the class whose pdmn value is code.
func ParseClass(code string) (Class, bool) {
	for _, c := range AllClasses {
		if classCodes[c] == code {
			return c, true
		}
	}
	return 0, false
}

// Availability says when a class key is in memory.
type Availability uint8

// The availabilities.
const (
	WhenUnlocked     Availability = 1 // ak, aku, akpu: only while Unlocked
	AfterFirstUnlock Availability = 2 // ck, cku: from the first unlock until Close
	Always           Availability = 3 // dk, dku: whenever the store is open
)

// Availability returns when c's key is available.
func (c Class) Availability() Availability {
	switch c {
	case CK, CKU:
		return AfterFirstUnlock
	case DK, DKU:
		return Always
	}
	return WhenUnlocked
}

// ThisDeviceOnly reports whether items of class c must never leave this
// device (they are excluded from portable backups).
func (c Class) ThisDeviceOnly() bool { return c >= AKU }

// NeedsPasscode reports whether c exists only while a passcode is set.
func (c Class) NeedsPasscode() bool { return c == AKPU }
