/* SPDX-License-Identifier: MIT */
/*
 * test_names.c - iovm_status_name() and iovm_fault_reason_name(): every
 * value of the enums has a name of its own, and anything else is named
 * unknown, never NULL (they go straight into printf).
 */
#include <string.h>

#include <iovm.h>

#include "harness.h"

TEST(every_status_has_a_name_of_its_own)
{
	static const int all[] = { IOVM_STATUS_NONE, IOVM_STATUS_SUCCESS, IOVM_STATUS_PAGE_FAULT,
				   IOVM_STATUS_INVALID, IOVM_STATUS_BATCH_FAIL, IOVM_STATUS_KEY };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		const char *n = iovm_status_name(all[i]);

		CHECK(n && *n && strcmp(n, "unknown status"));
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(n, iovm_status_name(all[j])));
	}
	CHECK(!strcmp(iovm_status_name(IOVM_STATUS_SUCCESS), "success"));
	CHECK(!strcmp(iovm_status_name(IOVM_STATUS_PAGE_FAULT), "page fault"));
	CHECK(!strcmp(iovm_status_name(-1), "unknown status"));
	CHECK(!strcmp(iovm_status_name(IOVM_STATUS_KEY + 1), "unknown status"));
	CHECK(!strcmp(iovm_status_name(256), "unknown status"));
}

TEST(every_fault_reason_has_a_name_of_its_own)
{
	static const int all[] = { IOVM_FAULT_NOT_PRESENT, IOVM_FAULT_PERMISSION, IOVM_FAULT_NO_DOMAIN,
				   IOVM_FAULT_BUS };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		const char *n = iovm_fault_reason_name(all[i]);

		CHECK(n && *n && strcmp(n, "unknown fault reason"));
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(n, iovm_fault_reason_name(all[j])));
	}
	CHECK(!strcmp(iovm_fault_reason_name(0), "unknown fault reason")); /* a record with no fault */
	CHECK(!strcmp(iovm_fault_reason_name(-5), "unknown fault reason"));
	CHECK(!strcmp(iovm_fault_reason_name(IOVM_FAULT_BUS + 1), "unknown fault reason"));
}

int main(void)
{
	test_init();
	RUN(every_status_has_a_name_of_its_own);
	RUN(every_fault_reason_has_a_name_of_its_own);
	return 0;
}
