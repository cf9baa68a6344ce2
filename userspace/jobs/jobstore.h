/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Job records on disk (jobstore.c): one file per job, DIR/NAME.job, in the
 * text of sxm_job_rec_format() (job.h), written atomically: a temporary
 * file, fsync, rename over the old one, fsync of the directory.  A crash
 * leaves the old record or the new one, never half of one.
 *
 * DIR is the daemon's --state-dir ($SXM_JOB_DIR, default /var/lib/sxm),
 * mode 0700; one daemon at a time holds a lock on it.
 *
 * Error policy as in sxm.h: 0 or -errno.
 */
#ifndef SXM_JOBSTORE_H
#define SXM_JOBSTORE_H

#include <stddef.h>

#include "jobs/job.h"

/*
 * Make and lock @dir; returns a descriptor of it (keep it open: it holds
 * the lock) or -errno with the reason in @err (-EWOULDBLOCK: another
 * daemon has it).
 */
int sxm_jobstore_open(const char *dir, char *err, size_t errlen);

int sxm_jobstore_save(int dirfd, const struct sxm_job_rec *j);
int sxm_jobstore_remove(int dirfd, const char *name);

/*
 * Read every DIR/NAME.job and call @cb with each record that parses; a
 * record that does not is renamed NAME.job.bad and reported through
 * sxm_err().  Stops at the first error @cb returns.
 */
int sxm_jobstore_load(int dirfd, int (*cb)(struct sxm_job_rec *j,
					   void *opaque), void *opaque);

#endif /* SXM_JOBSTORE_H */
