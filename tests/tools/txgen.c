/* txgen — placeholder until the ingestion issue lands. */
#include <stdio.h>
int main(void) { fputs("txgen: not implemented yet\n", stderr); return 1; }
