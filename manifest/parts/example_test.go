package parts_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/diskport/diskport/disk"
	"github.com/diskport/diskport/manifest/parts"
)

// ExampleVerify stores a file as three parts in a directory, hashing them
// as they are written, then damages one and verifies: the failure names
// the part and its byte range.
func ExampleVerify() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "parts-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	data := bytes.Repeat([]byte("disk"), 1500) // 6000 bytes
	file := parts.File{Parts: []parts.Part{
		{Index: 0, Offset: 0, Length: 2048, Key: "disk.img.part0"},
		{Index: 1, Offset: 2048, Length: 2048, Key: "disk.img.part1"},
		{Index: 2, Offset: 4096, Length: 1904, Key: "disk.img.part2"},
	}}
	store := parts.DirStore{Dir: dir}
	if err := store.Write(ctx, bytes.NewReader(data), &file, nil); err != nil {
		log.Fatal(err)
	}
	rep, err := parts.Verify(ctx, file, store, parts.VerifyOptions{})
	fmt.Println(rep.Parts, rep.Bytes, rep.Checksums, err)

	path, _ := store.Path(&file.Parts[1])
	if err := os.WriteFile(path, make([]byte, 2048), 0o644); err != nil {
		log.Fatal(err)
	}
	_, err = parts.Verify(ctx, file, store, parts.VerifyOptions{})
	var ve *parts.VerifyError
	if errors.As(err, &ve) {
		fmt.Println(ve.Failures[0].Part.String(), errors.Is(err, disk.ErrCorrupt))
	}
	// Output:
	// 3 6000 true <nil>
	// part 1 (bytes 2048-4095) true
}
