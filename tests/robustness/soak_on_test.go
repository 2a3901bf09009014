//go:build soak

package robustness

// soak selects the soak tier's counts (go test -tags soak).
const soak = true
