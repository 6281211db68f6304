package volume_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/diskport/diskport/volume"
)

// Example writes a 16 MiB volume in two segments with a resume journal,
// as a converter does: Create, Fill each segment, mark it done, checkpoint,
// Commit. A run that fails keeps its partial output with Keep (to be
// continued with Options.Resume) or removes it with Abort.
func Example() {
	dir, err := os.MkdirTemp("", "volume-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	dst := filepath.Join(dir, "disk.raw")

	const segment = 8 << 20
	spec := &volume.JournalSpec{Source: "fingerprint of the image", Segments: 2, SegmentSize: segment}
	w, err := volume.Create(dst, 2*segment, volume.Options{Resume: true, Journal: spec})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.StartedOver())
	j := w.Journal()
	data := []byte("boot sector")
	for i := range spec.Segments {
		if j.Done(i) {
			continue // finished by an interrupted run
		}
		if err := w.Fill(data, int64(i)*segment); err != nil {
			w.Keep()
			log.Fatal(err)
		}
		j.MarkDone(i)
		w.Writeback(int64(i)*segment, segment)
		if err := j.Checkpoint(nil); err != nil {
			w.Keep()
			log.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		log.Fatal(err)
	}
	st, _ := os.Stat(dst)
	fmt.Println(st.Size(), w.Written())
	// Output:
	// no partial output to resume: starting over
	// 16777216 22
}
