#!/usr/bin/env bash
#! tests/compose/cproj.sh: writes a multi-directory C project for the compose end-to-end test.
#
# Usage: tests/compose/cproj.sh DIR [LIBS] [FILES]   (defaults: 6 libraries of 8 sources each)
#
# A non-recursive Makefile includes one module.mk per library directory; each library is a static
# archive of -MMD-tracked objects; a generated header (from VERSION, by a script in tools/) feeds
# the program; the program is linked from all archives and then run to produce build/report.txt.
# `make VARIANT=x` changes every compile command, so each variant is a fresh build for a cache.
set -euo pipefail

dir=${1:?usage: cproj.sh DIR [LIBS] [FILES]}
libs=${2:-6}
files=${3:-8}
mkdir -p "$dir"/include "$dir"/tools "$dir"/app
cd "$dir"

printf '1.4.2\n' >VERSION

cat >tools/mkversion.sh <<'SH'
#!/bin/sh
# Writes the version header from the VERSION file named by $1.
printf '#define APP_VERSION "%s"\n' "$(cat "$1")"
SH
chmod +x tools/mkversion.sh

cat >include/mix.h <<'C'
#ifndef MIX_H
#define MIX_H
/* A small mixing step shared by every library (inlined everywhere). */
static inline unsigned long mix(unsigned long h, unsigned long v)
{
    h ^= v + 0x9e3779b97f4a7c15UL + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdUL;
}
#endif
C

cat >Makefile <<'MK'
# A non-recursive build: one module.mk per directory, all objects under build/.
VARIANT ?= 0
BUILD   := build
CFLAGS  := -O2 -Wall -MMD -MP -Iinclude -I. -I$(BUILD)/include -DVARIANT=$(VARIANT)
LIBS    := $(patsubst %/module.mk,%,$(sort $(wildcard lib*/module.mk)))

all:

include $(LIBS:%=%/module.mk)
include app/module.mk

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/include/version.h: VERSION tools/mkversion.sh
	@mkdir -p $(@D)
	tools/mkversion.sh $< > $@

clean:
	rm -rf $(BUILD)

.PHONY: all check clean
-include $(OBJS:.o=.d)
MK

cat >app/module.mk <<'MK'
app.objs := $(BUILD)/app/main.o
OBJS     += $(app.objs)

$(BUILD)/app/main.o: $(BUILD)/include/version.h

$(BUILD)/bin/app: $(app.objs) $(ALL_LIBS)
	@mkdir -p $(@D)
	$(CC) -o $@ $^

$(BUILD)/report.txt: $(BUILD)/bin/app
	$< > $@

all: $(BUILD)/bin/app $(BUILD)/report.txt

check: $(BUILD)/report.txt
	@grep '^total ' $<
MK

{
    printf '#include <stdio.h>\n#include "mix.h"\n#include "version.h"\n'
    for l in $(seq 1 "$libs"); do printf '#include "lib%d/lib%d.h"\n' "$l" "$l"; done
    printf 'int main(void)\n{\n    unsigned long total = 0, v;\n'
    printf '    printf("app %%s variant %%d\\n", APP_VERSION, VARIANT);\n'
    for l in $(seq 1 "$libs"); do
        for f in $(seq 1 "$files"); do
            printf '    v = lib%d_f%d(%d);\n    printf("lib%d_f%d %%lu\\n", v);\n    total = mix(total, v);\n' \
                "$l" "$f" "$((l * 100 + f))" "$l" "$f"
        done
    done
    printf '    printf("total %%lu\\n", total);\n    return 0;\n}\n'
} >app/main.c

for l in $(seq 1 "$libs"); do
    d="lib$l"
    mkdir -p "$d"
    {
        printf '#ifndef LIB%d_H\n#define LIB%d_H\n' "$l" "$l"
        for f in $(seq 1 "$files"); do printf 'unsigned long lib%d_f%d(unsigned long seed);\n' "$l" "$f"; done
        printf '#endif\n'
    } >"$d/lib$l.h"
    cat >"$d/module.mk" <<MK
lib$l.srcs := \$(sort \$(wildcard lib$l/*.c))
lib$l.objs := \$(lib$l.srcs:%.c=\$(BUILD)/%.o)
OBJS       += \$(lib$l.objs)
ALL_LIBS   += \$(BUILD)/lib$l.a

\$(BUILD)/lib$l.a: \$(lib$l.objs)
	\$(AR) rcs \$@ \$^
MK
    for f in $(seq 1 "$files"); do
        {
            printf '#include "mix.h"\n#include "lib%d/lib%d.h"\n\n' "$l" "$l"
            # Enough code that the optimiser has real work: 24 unrolled, vectorisable kernels.
            for k in $(seq 1 24); do
                printf 'static unsigned long k%d(unsigned long s)\n{\n' "$k"
                printf '    unsigned long a[64];\n    for (int i = 0; i < 64; i++) a[i] = mix(s, i * %d + VARIANT);\n' "$k"
                printf '    for (int r = 0; r < %d; r++)\n        for (int i = 1; i < 64; i++) a[i] = mix(a[i], a[i - 1] >> %d);\n' "$((k % 5 + 2))" "$((k % 7 + 1))"
                printf '    unsigned long h = s;\n    for (int i = 0; i < 64; i++) h = mix(h, a[i]);\n    return h;\n}\n\n'
            done
            printf 'unsigned long lib%d_f%d(unsigned long seed)\n{\n    unsigned long h = seed;\n' "$l" "$f"
            for k in $(seq 1 24); do printf '    h = mix(h, k%d(h + %d));\n' "$k" "$f"; done
            printf '    return h;\n}\n'
        } >"$d/f$f.c"
    done
done
