# Generates the VMDKstream test inputs (see vmdk/testdata/README.md).
import sys
sys.path.insert(0, "/usr/lib/python3/dist-packages")
import VMDKstream

def pattern(n, seed):
    x = seed + 1
    out = bytearray(n)
    for i in range(n):
        x = (x * 1664525 + 1013904223) & 0xffffffff
        out[i] = x >> 24
    return bytes(out)

def data(total):
    d = (b"The quick brown fox jumps over the lazy dog. " * 30000)[:1200000]
    d += bytes(600000) + pattern(20000, 9)
    d += (b"vmdkstream tail " * 100000)[:total - len(d)]
    return d

for name, total in (("vmdkstream-tail", 3000000), ("vmdkstream", 3000320)):
    open(name + ".raw", "wb").write(data(total))
    VMDKstream.convert_to_stream(name + ".raw", name + ".vmdk")
