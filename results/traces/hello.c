#include <stdio.h>
struct point { int x, y; };
static int dot(struct point a, struct point b) { return a.x * b.x + a.y * b.y; }
int main(void) {
	struct point p = {1, 2}, q = {3, 4};
	for (int i = 0; i < 10; i++)
		printf("%d\n", dot(p, q) + i);
	return 0;
}
