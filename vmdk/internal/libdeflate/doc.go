// Package libdeflate binds the few calls of libdeflate
// (https://github.com/ebiggers/libdeflate) that package vmdk uses:
// whole-buffer zlib decompression (Inflate) and compression (the stream
// writer's grains), each with a pool of decompressors or compressors. It
// is built only with cgo and without the purego tag; vmdk imports it only
// then. It lives apart from vmdk because a package using cgo cannot hold
// vmdk's Go assembly (the AVX2 Adler-32).
package libdeflate
