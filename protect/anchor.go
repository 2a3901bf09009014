package protect

// Anchor is a monotonic counter kept outside the store file: a TPM or
// secure-element counter, a record in another database, a value held by a
// server. The store counts its committed write transactions (its
// generation, stored in the file under a MAC) and tells the anchor each new
// generation; at Open a file whose generation is below the anchor's has
// been rolled back as a whole — replaced by an older copy of itself, which
// nothing inside one file can detect on its own.
//
// Implementations must be safe for concurrent use and must never go
// backwards: Advance with a generation at or below the stored one is a
// no-op (commits by concurrent writers may report out of order).
type Anchor interface {
	// Load returns the highest generation recorded (0 when none).
	Load() (uint64, error)
	// Advance records that generation g is committed.
	Advance(g uint64) error
}
