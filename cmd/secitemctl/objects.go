package main

import (
	"crypto"
	"crypto/x509"
	"fmt"

	"github.com/secitemdb/secitemdb/identity"
	"github.com/secitemdb/secitemdb/secitem"
)

// JSON cannot carry Go objects, so secitemctl accepts them tagged under
// v_Ref:
//
//	{"$certificate": {"$data": "<DER>"}}
//	{"$privateKey":  {"$data": "<PKCS #8 DER>"}}
//	{"$publicKey":   {"$data": "<PKIX DER>"}}
//	{"$identity": {"certificate": {"$data": ...}, "privateKey": {"$data": ...}}}
//
// Adding a certificate this way derives its attributes (pitfalls.md 13);
// adding its bytes under v_Data does not.
func resolveObjects(d secitem.Dict) error {
	v, ok := d[secitem.ValueRef]
	if !ok {
		return nil
	}
	obj, err := parseObject(v)
	if err != nil {
		return usageErr("v_Ref: " + err.Error())
	}
	d[secitem.ValueRef] = obj
	return nil
}

func parseObject(v any) (any, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil, fmt.Errorf(`expected one of {"$certificate": ...}, {"$privateKey": ...}, {"$publicKey": ...}, {"$identity": ...}`)
	}
	for k, x := range m {
		switch k {
		case "$certificate":
			b, ok := x.([]byte)
			if !ok {
				return nil, fmt.Errorf(`$certificate holds {"$data": "<DER>"}`)
			}
			return x509.ParseCertificate(b)
		case "$privateKey":
			b, ok := x.([]byte)
			if !ok {
				return nil, fmt.Errorf(`$privateKey holds {"$data": "<PKCS #8 DER>"}`)
			}
			return x509.ParsePKCS8PrivateKey(b)
		case "$publicKey":
			b, ok := x.([]byte)
			if !ok {
				return nil, fmt.Errorf(`$publicKey holds {"$data": "<PKIX DER>"}`)
			}
			return x509.ParsePKIXPublicKey(b)
		case "$identity":
			parts, ok := x.(map[string]any)
			if !ok {
				return nil, fmt.Errorf(`$identity holds {"certificate": ..., "privateKey": ...}`)
			}
			cb, _ := parts["certificate"].([]byte)
			kb, _ := parts["privateKey"].([]byte)
			cert, err := x509.ParseCertificate(cb)
			if err != nil {
				return nil, fmt.Errorf("$identity certificate: %v", err)
			}
			key, err := x509.ParsePKCS8PrivateKey(kb)
			if err != nil {
				return nil, fmt.Errorf("$identity privateKey: %v", err)
			}
			signer, ok := key.(crypto.Signer)
			if !ok {
				return nil, fmt.Errorf("$identity privateKey is not a signing key")
			}
			return &identity.Identity{Certificate: cert, PrivateKey: signer}, nil
		}
	}
	return nil, fmt.Errorf("unknown object %v", m)
}
