package monitor

// ResyncProgress records an online resync's copied rows, estimate and last
// chunk, on every mapping of the source table; done ends it (the table
// then reads as copied).
func (m *Monitor) ResyncProgress(source string, rows, total int64, chunk int, done bool) {
	m.SnapshotProgress(source, rows, total, done)
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, t := range m.tables {
		if k.source == source {
			t.t.Resyncing, t.t.ResyncChunk = !done, chunk
		}
	}
}
