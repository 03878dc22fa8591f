/* driver_exe.c - mode (a): an executable linked to the runtime (run with LD_PRELOAD). */
#include "driver.h"

int main(int argc, char **argv)
{
    return driver_main(argc - 1, argv + 1);
}
