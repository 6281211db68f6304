//go:build !amd64 || purego

package vmdk

const useAVX2 = false

func adlerSumsAVX2(p []byte, lanes *[16]uint32) { panic("vmdk: no AVX2") }
