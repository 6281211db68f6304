package vhd

// chsGeometry returns the cylinders, heads and sectors per track that the
// VHD specification's appendix computes for a disk of totalSectors
// sectors. The geometry rounds down (C×H×S ≤ totalSectors) and stops at
// 65535×16×255 sectors (about 127 GiB): larger disks get that maximum.
// qemu's calculate_geometry is the same algorithm.
func chsGeometry(totalSectors uint64) (cylinders uint16, heads, sectors uint8) {
	totalSectors = min(totalSectors, maxCHSSectors)
	var spt, h, cth uint64 // sectors per track, heads, cylinders × heads
	if totalSectors >= 65535*16*63 {
		spt, h = 255, 16
		cth = totalSectors / spt
	} else {
		spt = 17
		cth = totalSectors / spt
		h = max((cth+1023)/1024, 4)
		if cth >= h*1024 || h > 16 {
			// Too many cylinders for 17 sectors per track: the next
			// standard translation.
			spt, h = 31, 16
			cth = totalSectors / spt
		}
		if cth >= h*1024 {
			spt, h = 63, 16
			cth = totalSectors / spt
		}
	}
	return uint16(cth / h), uint8(h), uint8(spt)
}
