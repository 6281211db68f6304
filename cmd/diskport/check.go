package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/diskport/diskport/convert"
	"github.com/diskport/diskport/internal/logtext"
	"github.com/diskport/diskport/manifest"
)

func init() {
	register(&command{
		name:    "check",
		summary: "read every table and block of an image (inflating every grain), writing nothing: the verdict convert would give",
		usage:   "check " + imageSynopsis + " [--output human|json] [--workers N] [-p] " + sourceSynopsis,
		run:     runCheck,
	})
}

// checkJSON is `check --output=json`: qemu-img check's keys, diskport's
// own under "diskport".
type checkJSON struct {
	Filename    string `json:"filename"`
	Format      string `json:"format"`
	CheckErrors int    `json:"check-errors"`
	Diskport    struct {
		VirtualSize int64              `json:"virtual-size"`
		DataBytes   int64              `json:"data-bytes"`
		ZeroBytes   int64              `json:"zero-bytes"`
		Problems    []checkJSONProblem `json:"problems"`
	} `json:"diskport"`
}

type checkJSONProblem struct {
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	Error  string `json:"error"`
}

// runCheck runs `diskport check`.
func runCheck(c *command, args []string) error {
	fs := c.flags()
	var f imageFlags
	f.register(fs)
	f.registerEndpoint(fs)
	out := choiceFlag(fs, "output", "output `format`: human or json", "human", "json")
	workers := workersFlag(fs, 0, "segments read at once (default: one per CPU, at most 8)")
	progress := progressFlags(fs)
	pos, err := c.parse(fs, args, 0, 1)
	if err != nil {
		return err
	}
	path, _, err := f.split(pos, 0)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	img, err := f.open(ctx, path)
	if err != nil {
		return err
	}
	defer img.Close()
	bar := newBar(*progress, img.Size(), "checking")
	res, err := convert.Check(ctx, img, convert.CheckOptions{Workers: *workers, Progress: bar.set})
	bar.finish()
	if err != nil {
		return err
	}
	if *out == "json" {
		j := checkJSON{Filename: manifest.RedactURL(path), Format: img.Info().Format, CheckErrors: len(res.Problems)}
		j.Diskport.VirtualSize, j.Diskport.DataBytes, j.Diskport.ZeroBytes = res.VirtualSize, res.DataBytes, res.ZeroBytes
		j.Diskport.Problems = []checkJSONProblem{}
		for _, p := range res.Problems {
			j.Diskport.Problems = append(j.Diskport.Problems, checkJSONProblem{p.Offset, p.Length, logtext.OneLine(p.Err.Error())})
		}
		e := json.NewEncoder(stdout)
		e.SetIndent("", "    ")
		if err := e.Encode(j); err != nil {
			return err
		}
	} else {
		for _, p := range res.Problems {
			fmt.Fprintf(stdout, "ERROR %s\n", logtext.OneLine(p.Error()))
		}
		if len(res.Problems) == 0 {
			fmt.Fprintf(stdout, "No errors were found on the image.\nRead %s: %s in data runs, %s in zero runs.\n", sizeText(res.VirtualSize), sizeText(res.DataBytes), sizeText(res.ZeroBytes))
		}
	}
	if n := len(res.Problems); n > 0 {
		return fmt.Errorf("check: %d error(s) were found on %s: convert would refuse it", n, manifest.RedactURL(path))
	}
	return nil
}
