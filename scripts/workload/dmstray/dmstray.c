// SPDX-License-Identifier: GPL-2.0
/*
 * dmstray: one stray kernel read of a frame through its direct-map alias, for the protreplay capture
 * workload (phase "dmstray"). Loaded with `insmod dmstray.ko pfn=0x...` while that frame is a memfd_secret
 * page, i.e. removed from the direct map: copy_from_kernel_nofault() takes the not-present kernel fault
 * (exceptions:page_fault_kernel, error_code 0x0), the exception table fixes it up and the read returns
 * -EFAULT -- no oops. The result is left in /sys/module/dmstray/parameters/result; the module stays loaded
 * until rmmod. Built against the Debian headers of the guest kernel by scripts/capture-qemu.
 */
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mm.h>
#include <linux/uaccess.h>

static unsigned long pfn;
module_param(pfn, ulong, 0444);
MODULE_PARM_DESC(pfn, "frame whose direct-map alias is read once at load");

static int result = 1;
module_param(result, int, 0444);
MODULE_PARM_DESC(result, "0: the read succeeded; -EFAULT: it faulted and was fixed up; 1: not tried");

static int __init dmstray_init(void)
{
	unsigned long val = 0;
	void *alias;

	if (!pfn || !pfn_valid(pfn))
		return -EINVAL;
	alias = page_address(pfn_to_page(pfn));
	if (!alias)
		return -EINVAL;
	result = copy_from_kernel_nofault(&val, alias, sizeof(val));
	pr_info("dmstray: read of pfn %#lx at %px: %d\n", pfn, alias, result);
	return 0;
}

static void __exit dmstray_exit(void)
{
}

module_init(dmstray_init);
module_exit(dmstray_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("one stray direct-map read for the protreplay capture workload");
