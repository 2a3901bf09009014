package secitem

// Dictionary keys and values. Each constant's value is Apple's own string,
// so a dictionary printed here reads like one printed on a device, and the
// constants' names drop Apple's "kSec" prefix (kSecAttrAccount is
// AttrAccount).

// Item classes: the value of [Class].
const (
	Class                 = "class" // kSecClass
	ClassGenericPassword  = "genp"  // kSecClassGenericPassword
	ClassInternetPassword = "inet"  // kSecClassInternetPassword
	ClassCertificate      = "cert"  // kSecClassCertificate
	ClassKey              = "keys"  // kSecClassKey
	ClassIdentity         = "idnt"  // kSecClassIdentity: a certificate and its private key
)

// Value keys.
const (
	ValueData          = "v_Data"          // kSecValueData: the secret, []byte
	ValueRef           = "v_Ref"           // kSecValueRef: a Go certificate, key or *identity.Identity
	ValuePersistentRef = "v_PersistentRef" // kSecValuePersistentRef: 20 bytes naming one item
)

// Return keys; their values must be bool.
const (
	ReturnData          = "r_Data"          // kSecReturnData
	ReturnAttributes    = "r_Attributes"    // kSecReturnAttributes
	ReturnRef           = "r_Ref"           // kSecReturnRef
	ReturnPersistentRef = "r_PersistentRef" // kSecReturnPersistentRef
)

// Match keys: only SecItemCopyMatching accepts them.
const (
	MatchLimit                 = "m_Limit"                 // kSecMatchLimit
	MatchLimitOne              = "m_LimitOne"              // kSecMatchLimitOne
	MatchLimitAll              = "m_LimitAll"              // kSecMatchLimitAll
	MatchIssuers               = "m_Issuers"               // kSecMatchIssuers
	MatchPolicy                = "m_Policy"                // kSecMatchPolicy (ErrUnimplemented)
	MatchValidOnDate           = "m_ValidOnDate"           // kSecMatchValidOnDate
	MatchTrustedOnly           = "m_TrustedOnly"           // kSecMatchTrustedOnly (ErrUnimplemented)
	MatchEmailAddressIfPresent = "m_EmailAddressIfPresent" // kSecMatchEmailAddressIfPresent
	MatchHostOrSubdomainOfHost = "m_HostOrSubdomainOfHost" // kSecMatchHostOrSubdomainOfHost
	MatchCaseInsensitive       = "m_CaseInsensitive"       // kSecMatchCaseInsensitive (accepted, ignored)
	MatchSubjectContains       = "m_SubjectContains"       // kSecMatchSubjectContains (accepted, ignored)
	MatchItemList              = "m_ItemList"              // kSecMatchItemList (accepted, ignored)
	MatchSearchList            = "m_SearchList"            // kSecMatchSearchList (accepted, ignored)
)

// Use keys.
const (
	UseTombstones             = "u_Tomb"          // kSecUseTombstones
	UseCredentialReference    = "u_CredRef"       // kSecUseCredentialReference
	UseAuthenticationUI       = "u_AuthUI"        // kSecUseAuthenticationUI
	UseAuthenticationUIAllow  = "u_AuthUIA"       // kSecUseAuthenticationUIAllow
	UseAuthenticationUIFail   = "u_AuthUIF"       // kSecUseAuthenticationUIFail
	UseAuthenticationUISkip   = "u_AuthUIS"       // kSecUseAuthenticationUISkip
	UseAuthenticationContext  = "u_AuthCtx"       // kSecUseAuthenticationContext
	UseOperationPrompt        = "u_OpPrompt"      // kSecUseOperationPrompt
	UseCallerName             = "u_CallerName"    // kSecUseCallerName
	UseTokenRawItems          = "u_TokenRawItems" // kSecUseTokenRawItems
	UseItemList               = "u_ItemList"      // kSecUseItemList (rejected)
	UseDataProtectionKeychain = "nleg"            // kSecUseDataProtectionKeychain (ignored)
)

// Attributes of every class.
const (
	AttrCreationDate                  = "cdat" // kSecAttrCreationDate
	AttrModificationDate              = "mdat" // kSecAttrModificationDate
	AttrLabel                         = "labl" // kSecAttrLabel
	AttrAccessGroup                   = "agrp" // kSecAttrAccessGroup
	AttrAccessible                    = "pdmn" // kSecAttrAccessible
	AttrSynchronizable                = "sync" // kSecAttrSynchronizable
	AttrSynchronizableAny             = "syna" // kSecAttrSynchronizableAny: a key, or the value of AttrSynchronizable, meaning "synchronizable or not"
	AttrTombstone                     = "tomb" // kSecAttrTombstone
	AttrSHA1                          = "sha1" // kSecAttrSHA1
	AttrSyncViewHint                  = "vwht" // kSecAttrSyncViewHint
	AttrTokenID                       = "tkid" // kSecAttrTokenID
	AttrAccessControl                 = "accc" // kSecAttrAccessControl
	AttrMultiUser                     = "musr" // kSecAttrMultiUser
	AttrSysBound                      = "sysb" // kSecAttrSysBound
	AttrPCSPlaintextServiceIdentifier = "pcss" // kSecAttrPCSPlaintextServiceIdentifier
	AttrPCSPlaintextPublicKey         = "pcsk" // kSecAttrPCSPlaintextPublicKey
	AttrPCSPlaintextPublicIdentity    = "pcsi" // kSecAttrPCSPlaintextPublicIdentity
	AttrSharingGroup                  = "ggrp" // kSecAttrSharingGroup
	AttrSyncUUID                      = "UUID" // kSecAttrUUID (never returned)
	AttrAppClipItem                   = "clip" // kSecAttrAppClipItem (reserved: ErrParam)
)

// Attributes of generic and internet passwords.
const (
	AttrDescription        = "desc" // kSecAttrDescription
	AttrComment            = "icmt" // kSecAttrComment
	AttrCreator            = "crtr" // kSecAttrCreator
	AttrType               = "type" // kSecAttrType
	AttrScriptCode         = "scrp" // kSecAttrScriptCode
	AttrAlias              = "alis" // kSecAttrAlias
	AttrIsInvisible        = "invi" // kSecAttrIsInvisible
	AttrIsNegative         = "nega" // kSecAttrIsNegative
	AttrHasCustomIcon      = "cusi" // kSecAttrHasCustomIcon
	AttrProtected          = "prot" // kSecAttrProtected
	AttrAccount            = "acct" // kSecAttrAccount
	AttrService            = "svce" // kSecAttrService (genp)
	AttrGeneric            = "gena" // kSecAttrGeneric (genp)
	AttrSecurityDomain     = "sdmn" // kSecAttrSecurityDomain (inet)
	AttrServer             = "srvr" // kSecAttrServer (inet)
	AttrProtocol           = "ptcl" // kSecAttrProtocol (inet)
	AttrAuthenticationType = "atyp" // kSecAttrAuthenticationType (inet)
	AttrPort               = "port" // kSecAttrPort (inet)
	AttrPath               = "path" // kSecAttrPath (inet)
)

// Secret attributes of internet passwords, returned with r_Data.
const (
	DataInetExtraNotes          = "binn" // kSecDataInetExtraNotes
	DataInetExtraHistory        = "bini" // kSecDataInetExtraHistory
	DataInetExtraClientDefined0 = "bin0" // kSecDataInetExtraClientDefined0
	DataInetExtraClientDefined1 = "bin1" // kSecDataInetExtraClientDefined1
	DataInetExtraClientDefined2 = "bin2" // kSecDataInetExtraClientDefined2
	DataInetExtraClientDefined3 = "bin3" // kSecDataInetExtraClientDefined3
)

// Attributes of certificates.
const (
	AttrCertificateType     = "ctyp" // kSecAttrCertificateType
	AttrCertificateEncoding = "cenc" // kSecAttrCertificateEncoding
	AttrSubject             = "subj" // kSecAttrSubject
	AttrIssuer              = "issr" // kSecAttrIssuer
	AttrSerialNumber        = "slnr" // kSecAttrSerialNumber
	AttrSubjectKeyID        = "skid" // kSecAttrSubjectKeyID
	AttrPublicKeyHash       = "pkhh" // kSecAttrPublicKeyHash
)

// Attributes of keys.
const (
	AttrKeyClass            = "kcls" // kSecAttrKeyClass
	AttrIsPermanent         = "perm" // kSecAttrIsPermanent
	AttrIsPrivate           = "priv" // kSecAttrIsPrivate
	AttrIsModifiable        = "modi" // kSecAttrIsModifiable
	AttrApplicationLabel    = "klbl" // kSecAttrApplicationLabel
	AttrApplicationTag      = "atag" // kSecAttrApplicationTag
	AttrKeyCreator          = "crtr" // kSecAttrKeyCreator
	AttrKeyType             = "type" // kSecAttrKeyType
	AttrKeySizeInBits       = "bsiz" // kSecAttrKeySizeInBits
	AttrEffectiveKeySize    = "esiz" // kSecAttrEffectiveKeySize
	AttrStartDate           = "sdat" // kSecAttrStartDate
	AttrEndDate             = "edat" // kSecAttrEndDate
	AttrIsSensitive         = "sens" // kSecAttrIsSensitive
	AttrWasAlwaysSensitive  = "asen" // kSecAttrWasAlwaysSensitive
	AttrIsExtractable       = "extr" // kSecAttrIsExtractable
	AttrWasNeverExtractable = "next" // kSecAttrWasNeverExtractable
	AttrCanEncrypt          = "encr" // kSecAttrCanEncrypt
	AttrCanDecrypt          = "decr" // kSecAttrCanDecrypt
	AttrCanDerive           = "drve" // kSecAttrCanDerive
	AttrCanSign             = "sign" // kSecAttrCanSign
	AttrCanVerify           = "vrfy" // kSecAttrCanVerify
	AttrCanSignRecover      = "snrc" // kSecAttrCanSignRecover
	AttrCanVerifyRecover    = "vyrc" // kSecAttrCanVerifyRecover
	AttrCanWrap             = "wrap" // kSecAttrCanWrap
	AttrCanUnwrap           = "unwp" // kSecAttrCanUnwrap
)

// Values of [AttrAccessible]: the data protection classes.
const (
	AccessibleWhenUnlocked                   = "ak"   // kSecAttrAccessibleWhenUnlocked (the default)
	AccessibleAfterFirstUnlock               = "ck"   // kSecAttrAccessibleAfterFirstUnlock
	AccessibleAlways                         = "dk"   // kSecAttrAccessibleAlways (deprecated on devices)
	AccessibleWhenUnlockedThisDeviceOnly     = "aku"  // kSecAttrAccessibleWhenUnlockedThisDeviceOnly
	AccessibleAfterFirstUnlockThisDeviceOnly = "cku"  // kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
	AccessibleAlwaysThisDeviceOnly           = "dku"  // kSecAttrAccessibleAlwaysThisDeviceOnly
	AccessibleWhenPasscodeSetThisDeviceOnly  = "akpu" // kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly
)

// Values of [AttrKeyClass].
const (
	KeyClassPublic    = "0" // kSecAttrKeyClassPublic
	KeyClassPrivate   = "1" // kSecAttrKeyClassPrivate
	KeyClassSymmetric = "2" // kSecAttrKeyClassSymmetric
)

// Values of [AttrKeyType].
const (
	KeyTypeRSA              = "42"  // kSecAttrKeyTypeRSA
	KeyTypeECSECPrimeRandom = "73"  // kSecAttrKeyTypeECSECPrimeRandom
	KeyTypeEC               = "73"  // kSecAttrKeyTypeEC (the same value)
	KeyTypeEd25519          = "105" // kSecAttrKeyTypeEd25519
	KeyTypeX25519           = "106" // kSecAttrKeyTypeX25519
)

// Values of [AttrTokenID].
const (
	TokenIDSecureEnclave = "com.apple.setoken" // kSecAttrTokenIDSecureEnclave
)

// Values of [AttrProtocol] (four-character codes, stored as strings).
const (
	ProtocolFTP   = "ftp " // kSecAttrProtocolFTP
	ProtocolHTTP  = "http" // kSecAttrProtocolHTTP
	ProtocolHTTPS = "htps" // kSecAttrProtocolHTTPS
	ProtocolIMAP  = "imap" // kSecAttrProtocolIMAP
	ProtocolSMTP  = "smtp" // kSecAttrProtocolSMTP
	ProtocolSSH   = "ssh " // kSecAttrProtocolSSH
	ProtocolLDAP  = "ldap" // kSecAttrProtocolLDAP
)

// Values of [AttrAuthenticationType].
const (
	AuthenticationTypeNTLM       = "ntlm" // kSecAttrAuthenticationTypeNTLM
	AuthenticationTypeMSN        = "msna" // kSecAttrAuthenticationTypeMSN
	AuthenticationTypeDPA        = "dpaa" // kSecAttrAuthenticationTypeDPA
	AuthenticationTypeRPA        = "rpaa" // kSecAttrAuthenticationTypeRPA
	AuthenticationTypeHTTPBasic  = "http" // kSecAttrAuthenticationTypeHTTPBasic
	AuthenticationTypeHTTPDigest = "httd" // kSecAttrAuthenticationTypeHTTPDigest
	AuthenticationTypeHTMLForm   = "form" // kSecAttrAuthenticationTypeHTMLForm
	AuthenticationTypeDefault    = "dflt" // kSecAttrAuthenticationTypeDefault
)
