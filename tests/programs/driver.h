/* driver.h - entry point of the scriptable allocation driver (see driver.c). */
#ifndef RMCP_TEST_DRIVER_H
#define RMCP_TEST_DRIVER_H

/* Runs each argv item as one op; returns 0 if every op returned 0, else 1. */
int driver_main(int argc, char **argv);

#endif
