/*
 * stepcount_check.c - a small program that both bench/stepcount.c and callgrind can count,
 * so bench/model.sh can show that the two agree before it uses stepcount where callgrind
 * cannot run. `work` (its own code, qsort and snprintf in libc) runs once to warm up (lazy
 * binding, first-call paths) and once measured: between int3 markers when CHECK_MARK=1
 * (for stepcount), and as the function callgrind's --toggle-collect=work counts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int v[256];

__attribute__((noinline, noipa)) static void body(void)
{
    for (int i = 0; i < 256; i++)
        v[i] = (i * 7919 + 13) % 1000;
    qsort(v, 256, sizeof v[0], cmp);
    char buf[64];
    snprintf(buf, sizeof buf, "median %d", v[128]);
    if (strlen(buf) > 60)
        abort();
}

__attribute__((noinline, noipa)) void warm(void) { body(); }
__attribute__((noinline, noipa)) void work(void) { body(); }

int main(void)
{
    const char *m = getenv("CHECK_MARK");
    int mark = m && !strcmp(m, "1");
    warm();
    if (mark)
        __asm__ volatile("int3");
    work();
    if (mark)
        __asm__ volatile("int3");
    printf("%d\n", v[0]);
    return 0;
}
