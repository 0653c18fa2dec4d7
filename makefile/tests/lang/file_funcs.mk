N = src/a.c b.tar.gz /x/y/ dir.d/file noext .hidden
$(info [$(dir $(N))])
$(info [$(notdir $(N))])
$(info [$(suffix $(N))])
$(info [$(basename $(N))])
$(info [$(abspath /a/b/../c/./d //e)])
$(info [$(realpath /nonexistent /)])
