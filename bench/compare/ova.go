//go:build linux

package main

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/diskport/diskport/internal/testimg"
)

// ovaRow is the OVA row: the streamOptimized image inside an
// OVA, converted in place (its .mf SHA-256 checked as it is read), against
// the same image as a bare file: reading through the OVA (the tar, the
// .mf hash) must cost little over the bare file (its target, and
// what bounds it, are in bench/BOUNDS.md).
const ovaRow = "ova"

// ovaTarget is the bare/OVA wall ratio the OVA row must reach.
const ovaTarget = 0.95

// appliance returns the path of an OVA holding the streamOptimized image
// of s, laid out as ovftool writes one (descriptor, .mf with SHA-256, the
// disk), making it when it is not cached; and the bare image's path.
func (s *imageSet) appliance() (ova, bare string, err error) {
	f, err := pickFormats("streamOptimized")
	if err != nil {
		return "", "", err
	}
	bare, err = s.image(f[0])
	if err != nil {
		return "", "", err
	}
	ova = filepath.Join(filepath.Dir(bare), "appliance.ova")
	if _, err := os.Stat(ova); err == nil {
		return ova, bare, nil
	}
	logf("making the OVA around %s", bare)
	tmp := ova + ".tmp"
	if err := writeOVA(tmp, bare, s.size); err != nil {
		os.Remove(tmp)
		return "", "", err
	}
	return ova, bare, os.Rename(tmp, ova)
}

// writeOVA writes an OVA of one streamOptimized disk, the file at disk, of
// capacity bytes, streaming the disk into the tar.
func writeOVA(path, disk string, capacity int64) error {
	src, err := os.Open(disk)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	h := sha256.New()
	if _, err := io.Copy(h, src); err != nil {
		return err
	}
	const member = "appliance-disk1.vmdk"
	ovf := testimg.OVFDescriptor(1, []testimg.OVADisk{{ID: "vmdisk1", File: member, Format: testimg.URIStreamOptimized,
		Capacity: fmt.Sprint(capacity)}}, map[string]int{member: int(st.Size())})
	mf := fmt.Sprintf("SHA256(appliance.ovf)= %x\nSHA256(%s)= %x\n", sha256.Sum256([]byte(ovf)), member, h.Sum(nil))
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	put := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := put("appliance.ovf", int64(len(ovf)), strings.NewReader(ovf)); err != nil {
		return err
	}
	if err := put("appliance.mf", int64(len(mf)), strings.NewReader(mf)); err != nil {
		return err
	}
	if err := put(member, st.Size(), src); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return out.Close()
}

// compareOVA verifies and times diskport on the OVA against diskport on
// the bare image, in the fast mode.
func compareOVA(o options, p programs, set *imageSet, f format, work string) (row, error) {
	ova, bare, err := set.appliance()
	if err != nil {
		return row{}, err
	}
	vsize, err := set.virtualSize(bare, f.Qemu)
	if err != nil {
		return row{}, err
	}
	dp := func(name, src string) tool {
		return command(name, outPath(work, name), func(_, dst string) []string {
			return []string{p.diskport, "convert", "--exact-size", "--force", "--no-sync", src, dst}
		})
	}
	tools := []tool{dp("diskport OVA", ova), dp("diskport VMDK", bare)}
	logf("%s %s: %s against %s, virtual size %s", set.label, f.Name, ova, bare, mib(vsize))
	v, err := verify(tools, ova, vsize)
	if err != nil {
		return row{}, err
	}
	times, err := measure(tools, ova, o.runs)
	if err != nil {
		return row{}, err
	}
	return row{format: f, virtualSize: vsize, tools: []string{tools[0].name, tools[1].name}, times: times, verify: v}, nil
}

// ovaTable writes the OVA rows: the OVA against the bare image.
func ovaTable(b io.Writer, rows []row) {
	fmt.Fprintf(b, "| image | OVA s | bare VMDK s | bare/OVA geo | median ratio | target | OVA CPU s | bare CPU s | OVA minflt | bare minflt | OVA peak anon | bare peak anon |\n")
	fmt.Fprintf(b, "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		f := pairOf(r)
		fmt.Fprintf(b, "| streamOptimized | %.2f | %.2f | %.3f× | %.3f× | ≥%.2f× %s | %.2f | %.2f | %s | %s | %s | %s |\n",
			f.wall[0], f.wall[1], f.geo, f.wall[1]/f.wall[0], ovaTarget, met(f.geo, ovaTarget), f.cpu[0], f.cpu[1],
			faults(medianFaults(r.times[0])), faults(medianFaults(r.times[1])),
			mib(r.verify.anon[0]), mib(r.verify.anon[1]))
	}
}
