package main

import (
	"bufio"
	"encoding/json"
	"fmt"

	"github.com/diskport/diskport/disk"
)

// mapEntry is one line of `map --output json`, shaped like
// `qemu-img map --output=json`.
type mapEntry struct {
	Start      int64  `json:"start"`
	Length     int64  `json:"length"`
	Data       bool   `json:"data"`
	Zero       bool   `json:"zero"`
	Compressed bool   `json:"compressed,omitempty"`
	Offset     *int64 `json:"offset,omitempty"`
}

func init() {
	register(&command{
		name:    "map",
		summary: "print the extent map: which ranges hold data and which read as zeros",
		usage:   "map [--format F] [--output human|json] IMAGE",
		run:     runMap,
	})
}

// runMap runs `diskport map`.
func runMap(c *command, args []string) error {
	im, _, output, err := c.openWithOutput(args)
	if err != nil {
		return err
	}
	defer im.Close()
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	if output == "human" {
		fmt.Fprintf(w, "%-20s%-20s%-6s%s\n", "Offset", "Length", "Kind", "Mapped to")
	} else {
		fmt.Fprint(w, "[")
	}
	first := true
	for e, err := range im.Extents(0, im.Size()) {
		if err != nil {
			return err
		}
		if output == "human" {
			where := ""
			if e.Stored != nil {
				where = fmt.Sprintf("%s @ %#x", e.Stored.Name(), e.StoredOffset)
			} else if e.Compressed {
				where = "(compressed)"
			}
			fmt.Fprintf(w, "%#-20x%#-20x%-6s%s\n", e.Offset, e.Length, e.Kind, where)
			continue
		}
		m := mapEntry{Start: e.Offset, Length: e.Length, Data: e.Kind == disk.Data, Zero: e.Kind == disk.Zero, Compressed: e.Compressed}
		if e.Stored != nil {
			o := e.StoredOffset
			m.Offset = &o
		}
		b, _ := json.Marshal(m)
		if !first {
			fmt.Fprint(w, ",")
		}
		first = false
		fmt.Fprintf(w, "\n%s", b)
	}
	if output == "json" {
		fmt.Fprintln(w, "\n]")
	}
	return nil
}
