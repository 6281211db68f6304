//go:build amd64 && !purego

#include "textflag.h"

// Byte j of a 32-byte block is counted in the block's s2 32-j times.
DATA adlerWeights<>+0(SB)/8, $0x191a1b1c1d1e1f20
DATA adlerWeights<>+8(SB)/8, $0x1112131415161718
DATA adlerWeights<>+16(SB)/8, $0x090a0b0c0d0e0f10
DATA adlerWeights<>+24(SB)/8, $0x0102030405060708
GLOBL adlerWeights<>(SB), RODATA|NOPTR, $32

DATA adlerOnes<>+0(SB)/8, $0x0001000100010001
DATA adlerOnes<>+8(SB)/8, $0x0001000100010001
DATA adlerOnes<>+16(SB)/8, $0x0001000100010001
DATA adlerOnes<>+24(SB)/8, $0x0001000100010001
GLOBL adlerOnes<>(SB), RODATA|NOPTR, $32

// func adlerSumsAVX2(p []byte, lanes *[16]uint32)
//
// For blocks k = 0..n-1 of p: Y1 sums the bytes (VPSADBW against zero),
// Y2 the bytes times their weights 32..1 within their block (VPMADDUBSW,
// then VPMADDWD by ones to 32-bit lanes), and Y3 the value of Y1 before
// each block, so that 32·Y3 counts each byte once more for every block
// after its own.
TEXT ·adlerSumsAVX2(SB), NOSPLIT, $0-32
	MOVQ p_base+0(FP), SI
	MOVQ p_len+8(FP), CX
	MOVQ lanes+24(FP), DI
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VMOVDQU adlerWeights<>(SB), Y4
	VMOVDQU adlerOnes<>(SB), Y5

loop:
	VMOVDQU    (SI), Y6
	VPADDD     Y1, Y3, Y3
	VPSADBW    Y0, Y6, Y7
	VPADDD     Y7, Y1, Y1
	VPMADDUBSW Y4, Y6, Y8
	VPMADDWD   Y5, Y8, Y8
	VPADDD     Y8, Y2, Y2
	ADDQ       $32, SI
	SUBQ       $32, CX
	JNZ        loop

	VPSLLD  $5, Y3, Y3
	VPADDD  Y3, Y2, Y2
	VMOVDQU Y1, (DI)
	VMOVDQU Y2, 32(DI)
	VZEROUPPER
	RET
