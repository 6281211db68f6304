package convert

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/diskport/diskport/disk"
)

// runsOf collects what storedRuns yields for e.
func runsOf(t *testing.T, e disk.Extent) []disk.Extent {
	t.Helper()
	var out []disk.Extent
	for r, err := range storedRuns(e) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestStoredRuns splits a verbatim run stored in a sparse host file (data,
// a 2 MiB hole, data) into data, zero, data, the runs covering the extent
// exactly, each data run at its own stored offset.
func TestStoredRuns(t *testing.T) {
	name := filepath.Join(t.TempDir(), "flat")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i%253 + 1)
	}
	f.WriteAt(data, 0)
	f.WriteAt(data, 3<<20)
	f.Close()
	h, err := disk.OpenHostFile(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	// The extent starts 4 KiB into the file and at virtual byte 1 GiB.
	e := disk.Extent{Offset: 1 << 30, Length: 4<<20 - 4096, Kind: disk.Data, Stored: h, StoredOffset: 4096}
	got := runsOf(t, e)
	want := []disk.Extent{
		{Offset: 1 << 30, Length: 1<<20 - 4096, Kind: disk.Data, Stored: h, StoredOffset: 4096},
		{Offset: 1<<30 + 1<<20 - 4096, Length: 2 << 20, Kind: disk.Zero},
		{Offset: 1<<30 + 3<<20 - 4096, Length: 1 << 20, Kind: disk.Data, Stored: h, StoredOffset: 3 << 20},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d runs %+v, want %+v", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("run %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// lying is a storage whose NextData reports empty data runs.
type lying struct{ disk.Storage }

func (lying) NextData(off int64) (int64, int64, error) { return off, off, nil }

// TestStoredRunsLyingStorage: a storage that reports an empty run has the
// rest of the extent read as data, never taken for zeros.
func TestStoredRunsLyingStorage(t *testing.T) {
	e := disk.Extent{Offset: 0, Length: 2 << 20, Kind: disk.Data, Stored: lying{}, StoredOffset: 512}
	got := runsOf(t, e)
	if len(got) != 1 || got[0] != e {
		t.Fatalf("got %+v, want the extent whole as data", got)
	}
}
