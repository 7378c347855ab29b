package replicator

import (
	"fmt"
)

// LSN is a PostgreSQL write-ahead log position.
type LSN uint64

// String formats the LSN the way PostgreSQL prints it (upper/lower 32 bits in hex).
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l))
}

// ParseLSN reads the "XXX/XXX" form PostgreSQL prints.
func ParseLSN(s string) (LSN, error) {
	var hi, lo uint32
	if _, err := fmt.Sscanf(s, "%X/%X", &hi, &lo); err != nil {
		return 0, fmt.Errorf("parse LSN %q: %w", s, err)
	}
	return LSN(uint64(hi)<<32 | uint64(lo)), nil
}
