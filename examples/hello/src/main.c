#include <stdio.h>
#include "greet.h"
#include "version.h"
int main(void) {
    printf("%s (version %s)\n", greeting(), VERSION);
    return 0;
}
