#include "attack6_devown.h"
TEST(x){CHECK(1);}
int main(void){test_init();RUN(x);return 0;}
