package schema

// The attribute table. One row per attribute: code, kind, flags, Apple's
// constant. Rows follow Apple's schema 12.11 (apple-reference.md a.3-a.8);
// the Indexed and FewValues flags are secitemdb's own.

const (
	p = PrimaryKey
	r = Returned
	d = Secret
	e = DefaultEmpty
	z = DefaultZero
	n = NotNull
	x = Indexed
	o = AddOnly
	h = Hidden
	f = FewValues
)

// head rows open every stored class; tail rows close it. The order is
// Apple's, so primary keys print as the device lists them.
var head = []Attr{
	{Code: "cdat", Kind: DateKind, Flags: r, Name: "kSecAttrCreationDate"},
	{Code: "mdat", Kind: DateKind, Flags: r, Name: "kSecAttrModificationDate"},
}

var label = Attr{Code: "labl", Kind: Blob, Flags: r | x, Name: "kSecAttrLabel"}

var tail = []Attr{
	{Code: "agrp", Kind: StringKind, Flags: p | r | n | f, Name: "kSecAttrAccessGroup"},
	{Code: "pdmn", Kind: Access, Flags: r | f, Name: "kSecAttrAccessible"},
	{Code: "sync", Kind: BoolKind, Flags: p | r | z | n | f, Name: "kSecAttrSynchronizable"},
	{Code: "tomb", Kind: BoolKind, Flags: z | n | f, Name: "kSecAttrTombstone"},
	{Code: "sha1", Kind: SHA1Kind, Flags: r | Computed, Name: "kSecAttrSHA1"},
	{Code: "vwht", Kind: StringKind, Flags: p | r | f, Name: "kSecAttrSyncViewHint"},
	{Code: "tkid", Kind: StringKind, Flags: p | r | o | f, Name: "kSecAttrTokenID"},
	{Code: "accc", Kind: AccessControl, Flags: r | o, Name: "kSecAttrAccessControl"},
	{Code: "musr", Kind: UUIDKind, Flags: p | n | o | f, Name: "kSecAttrMultiUser"},
	{Code: "UUID", Kind: StringKind, Flags: h, Name: "kSecAttrUUID"},
	{Code: "sysb", Kind: NumberKind, Flags: r | z, Name: "kSecAttrSysBound"},
	{Code: "pcss", Kind: NumberKind, Flags: r, Name: "kSecAttrPCSPlaintextServiceIdentifier"},
	{Code: "pcsk", Kind: Blob, Flags: r, Name: "kSecAttrPCSPlaintextPublicKey"},
	{Code: "pcsi", Kind: Blob, Flags: r, Name: "kSecAttrPCSPlaintextPublicIdentity"},
	{Code: "clip", Kind: NumberKind, Flags: Reserved, Name: "kSecAttrAppClipItem"},
	{Code: "ggrp", Kind: StringKind, Flags: p | r | o | f, Name: "kSecAttrSharingGroup"},
	{Code: "v_Data", Kind: DataKind, Flags: d, Name: "kSecValueData"},
}

// passwordCommon rows are shared by genp and inet.
var passwordCommon = []Attr{
	{Code: "desc", Kind: Blob, Flags: r, Name: "kSecAttrDescription"},
	{Code: "icmt", Kind: Blob, Flags: r, Name: "kSecAttrComment"},
	{Code: "crtr", Kind: NumberKind, Flags: r, Name: "kSecAttrCreator"},
	{Code: "type", Kind: NumberKind, Flags: r | f, Name: "kSecAttrType"},
	{Code: "scrp", Kind: NumberKind, Flags: r, Name: "kSecAttrScriptCode"},
	label,
	{Code: "alis", Kind: Blob, Flags: r, Name: "kSecAttrAlias"},
	{Code: "invi", Kind: NumberKind, Flags: r, Name: "kSecAttrIsInvisible"},
	{Code: "nega", Kind: NumberKind, Flags: r, Name: "kSecAttrIsNegative"},
	{Code: "cusi", Kind: NumberKind, Flags: r, Name: "kSecAttrHasCustomIcon"},
	{Code: "prot", Kind: Blob, Flags: r, Name: "kSecAttrProtected"},
}

var genpRows = []Attr{
	{Code: "acct", Kind: Blob, Flags: p | r | e | n | x, Name: "kSecAttrAccount"},
	{Code: "svce", Kind: Blob, Flags: p | r | e | n | x, Name: "kSecAttrService"},
	{Code: "gena", Kind: Blob, Flags: r, Name: "kSecAttrGeneric"},
}

var inetRows = []Attr{
	{Code: "acct", Kind: Blob, Flags: p | r | e | n | x, Name: "kSecAttrAccount"},
	{Code: "sdmn", Kind: Blob, Flags: p | r | e | n, Name: "kSecAttrSecurityDomain"},
	{Code: "srvr", Kind: Blob, Flags: p | r | e | n | x, Name: "kSecAttrServer"},
	{Code: "ptcl", Kind: NumberKind, Flags: p | r | z | n | f, Name: "kSecAttrProtocol"},
	{Code: "atyp", Kind: Blob, Flags: p | r | e | n | f, Name: "kSecAttrAuthenticationType"},
	{Code: "port", Kind: NumberKind, Flags: p | r | z | n, Name: "kSecAttrPort"},
	{Code: "path", Kind: Blob, Flags: p | r | e | n, Name: "kSecAttrPath"},
	{Code: "binn", Kind: DataKind, Flags: d, Name: "kSecDataInetExtraNotes"},
	{Code: "bini", Kind: DataKind, Flags: d, Name: "kSecDataInetExtraHistory"},
	{Code: "bin0", Kind: DataKind, Flags: d, Name: "kSecDataInetExtraClientDefined0"},
	{Code: "bin1", Kind: DataKind, Flags: d, Name: "kSecDataInetExtraClientDefined1"},
	{Code: "bin2", Kind: DataKind, Flags: d, Name: "kSecDataInetExtraClientDefined2"},
	{Code: "bin3", Kind: DataKind, Flags: d, Name: "kSecDataInetExtraClientDefined3"},
}

var certRows = []Attr{
	{Code: "ctyp", Kind: NumberKind, Flags: p | r | z | n | f, Name: "kSecAttrCertificateType"},
	{Code: "cenc", Kind: NumberKind, Flags: r | f, Name: "kSecAttrCertificateEncoding"},
	label,
	{Code: "alis", Kind: Blob, Flags: r | x, Name: "kSecAttrAlias"},
	{Code: "subj", Kind: DataKind, Flags: r | x, Name: "kSecAttrSubject"},
	{Code: "issr", Kind: DataKind, Flags: p | r | e | n | x, Name: "kSecAttrIssuer"},
	{Code: "slnr", Kind: DataKind, Flags: p | r | e | n | x, Name: "kSecAttrSerialNumber"},
	{Code: "skid", Kind: DataKind, Flags: r | x, Name: "kSecAttrSubjectKeyID"},
	{Code: "pkhh", Kind: DataKind, Flags: r | x | JoinKey, Name: "kSecAttrPublicKeyHash"},
}

var keysRows = []Attr{
	{Code: "kcls", Kind: NumberKind, Flags: p | r | z | n | f, Name: "kSecAttrKeyClass"},
	label,
	{Code: "alis", Kind: Blob, Flags: r | x, Name: "kSecAttrAlias"},
	{Code: "perm", Kind: NumberKind, Flags: r | f, Name: "kSecAttrIsPermanent"},
	{Code: "priv", Kind: NumberKind, Flags: r | f, Name: "kSecAttrIsPrivate"},
	{Code: "modi", Kind: NumberKind, Flags: r | f, Name: "kSecAttrIsModifiable"},
	{Code: "klbl", Kind: DataKind, Flags: p | r | e | n | x | JoinKey, Name: "kSecAttrApplicationLabel"},
	{Code: "atag", Kind: Blob, Flags: p | r | e | n | x, Name: "kSecAttrApplicationTag"},
	{Code: "crtr", Kind: NumberKind, Flags: p | r | z | n, Name: "kSecAttrKeyCreator"},
	{Code: "type", Kind: NumberKind, Flags: p | r | z | n | f, Name: "kSecAttrKeyType"},
	{Code: "bsiz", Kind: NumberKind, Flags: p | r | z | n | f, Name: "kSecAttrKeySizeInBits"},
	{Code: "esiz", Kind: NumberKind, Flags: p | r | z | n | f, Name: "kSecAttrEffectiveKeySize"},
	{Code: "sdat", Kind: DateKind, Flags: p | r | z | n, Name: "kSecAttrStartDate"},
	{Code: "edat", Kind: DateKind, Flags: p | r | z | n, Name: "kSecAttrEndDate"},
	{Code: "sens", Kind: NumberKind, Flags: r, Name: "kSecAttrIsSensitive"},
	{Code: "asen", Kind: NumberKind, Flags: r | f, Name: "kSecAttrWasAlwaysSensitive"},
	{Code: "extr", Kind: NumberKind, Flags: r | f, Name: "kSecAttrIsExtractable"},
	{Code: "next", Kind: NumberKind, Flags: r | f, Name: "kSecAttrWasNeverExtractable"},
	{Code: "encr", Kind: NumberKind, Flags: r | f, Name: "kSecAttrCanEncrypt"},
	{Code: "decr", Kind: NumberKind, Flags: r | f, Name: "kSecAttrCanDecrypt"},
	{Code: "drve", Kind: NumberKind, Flags: r | f, Name: "kSecAttrCanDerive"},
	{Code: "sign", Kind: NumberKind, Flags: r | f, Name: "kSecAttrCanSign"},
	{Code: "vrfy", Kind: NumberKind, Flags: r | f, Name: "kSecAttrCanVerify"},
	{Code: "snrc", Kind: NumberKind, Flags: r | f, Name: "kSecAttrCanSignRecover"},
	{Code: "vyrc", Kind: NumberKind, Flags: r | f, Name: "kSecAttrCanVerifyRecover"},
	{Code: "wrap", Kind: NumberKind, Flags: r | f, Name: "kSecAttrCanWrap"},
	{Code: "unwp", Kind: NumberKind, Flags: r | f, Name: "kSecAttrCanUnwrap"},
}

// The five classes.
var (
	GenericPassword  = newClass("genp", "kSecClassGenericPassword", head, passwordCommon, genpRows, tail)
	InternetPassword = newClass("inet", "kSecClassInternetPassword", head, passwordCommon, inetRows, tail)
	Certificate      = newClass("cert", "kSecClassCertificate", head, certRows, tail)
	Key              = newClass("keys", "kSecClassKey", head, keysRows, tail)
	Identity         = &Class{Code: "idnt", Name: "kSecClassIdentity", byCode: map[string]*Attr{}, parts: []*Class{Certificate, Key}}
)

var classes = map[string]*Class{
	"genp": GenericPassword,
	"inet": InternetPassword,
	"cert": Certificate,
	"keys": Key,
	"idnt": Identity,
}
