// Package property_test checks secitemdb against properties and a reference
// model with pgregory.net/rapid. Failing cases are shrunk and saved under
// testdata/rapid/, and replayed on every later run.
package property_test

import "crypto/x509/pkix"

func pkixName(cn string) pkix.Name { return pkix.Name{CommonName: cn} }
