package monitor

// ResyncProgress records an online resync's copied rows, estimate and last
// chunk; done ends it (the table then reads as copied).
func (m *Monitor) ResyncProgress(source string, rows, total int64, chunk int, done bool) {
	m.SnapshotProgress(source, rows, total, done)
	m.mu.Lock()
	defer m.mu.Unlock()
	if t := m.tables[source]; t != nil {
		t.t.Resyncing, t.t.ResyncChunk = !done, chunk
	}
}
