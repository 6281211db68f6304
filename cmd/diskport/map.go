package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
)

func init() {
	register(&command{
		name:    "map",
		summary: "print the extent map: which ranges hold data and which read as zeros",
		usage:   "map " + imageSynopsis + " [--output human|json] " + sourceSynopsis,
		run:     runMap,
	})
}

// runMap runs `diskport map`.
func runMap(c *command, args []string) error {
	im, _, output, err := c.openWithOutput(context.Background(), args)
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
	info := im.Info()
	first, format, flat := true, info.Format, flatStorage(info)
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
		err = qemuMapEntries(e, format, flat, func(m qemuMapEntry) {
			b, _ := json.Marshal(m)
			if !first {
				fmt.Fprint(w, ",\n")
			}
			first = false
			w.Write(b)
		})
		if err != nil {
			return err
		}
	}
	if output == "json" {
		fmt.Fprintln(w, "]")
	}
	return nil
}
