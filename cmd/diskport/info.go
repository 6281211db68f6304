package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/diskport/diskport/disk"
)

func init() {
	register(&command{
		name:    "info",
		summary: "describe an image: format, virtual size, allocation",
		usage:   "info " + imageSynopsis + " [--output human|json] " + sourceSynopsis,
		run:     runInfo,
	})
}

// runInfo runs `diskport info`.
func runInfo(c *command, args []string) error {
	im, path, output, err := c.openWithOutput(context.Background(), args)
	if err != nil {
		return err
	}
	defer im.Close()
	info := im.Info()
	app, _ := im.Appliance()
	isOVA := app != nil
	if output == "json" {
		e := json.NewEncoder(stdout)
		e.SetIndent("", "    ")
		q := qemuInfoOf(info, path, im.Manifest() == nil && !isOVA)
		if isOVA {
			q.Diskport.Appliance = applianceJSON(path, im)
			if n, ok := hostAllocation([]string{path}); ok {
				q.ActualSize = n // the file qemu-img would read
			}
		}
		return e.Encode(q)
	}
	printInfo(stdout, path, info)
	if isOVA {
		printAppliance(stdout, path, im)
	}
	return nil
}

func printInfo(w io.Writer, name string, i disk.Info) {
	fmt.Fprintf(w, "image: %s\n", name)
	fmt.Fprintf(w, "file format: %s\n", i.Format)
	if i.Subformat != "" {
		fmt.Fprintf(w, "subformat: %s\n", i.Subformat)
	}
	fmt.Fprintf(w, "virtual size: %s (%d bytes)\n", disk.FormatSize(i.VirtualSize), i.VirtualSize)
	fmt.Fprintf(w, "file size: %s (%d bytes)\n", disk.FormatSize(i.FileSize), i.FileSize)
	fmt.Fprintf(w, "allocated: %s (%d bytes)\n", disk.FormatSize(i.AllocatedBytes), i.AllocatedBytes)
	if i.ClusterSize > 0 {
		fmt.Fprintf(w, "cluster size: %d\n", i.ClusterSize)
	}
	if len(i.Specific) > 0 {
		fmt.Fprintln(w, "format specific information:")
		keys := make([]string, 0, len(i.Specific))
		for k := range i.Specific {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, err := json.Marshal(i.Specific[k])
			if err != nil {
				v = []byte(fmt.Sprint(i.Specific[k]))
			}
			fmt.Fprintf(w, "    %s: %s\n", k, v)
		}
	}
	fmt.Fprintln(w, "blocks: not read (info reads the tables only; 'diskport check' reads every block)")
}
