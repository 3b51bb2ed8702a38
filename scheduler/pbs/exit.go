package pbs

import (
	"fmt"

	"qmd/daemon/job"
)

// ExecCode is one of the negative exit statuses the server or MoM records when a job did
// not end by itself: it could not start, or PBS killed it.
type ExecCode struct {
	Name    string    // the JOB_EXEC_* constant
	Meaning string    // what it says, for Reason
	State   job.State // Timeout for the walltime kill, Failed for everything else
}

// ExecCodes are PBS Pro's negative Exit_status values (the JOB_EXEC_* constants of
// OpenPBS's job.h). Only the walltime kill is a timeout; killing a job over its memory or
// CPU limits is a failure the user must size differently, and every launch problem is a
// failure too, since by the time the job is F the server has given up rerunning it.
var ExecCodes = map[int]ExecCode{
	-1: {Name: "JOB_EXEC_FAIL1", State: job.Failed,
		Meaning: "could not start the job, before its files were set up"},
	-2: {Name: "JOB_EXEC_FAIL2", State: job.Failed,
		Meaning: "could not start the job, after its files were set up"},
	-3: {Name: "JOB_EXEC_RETRY", State: job.Failed,
		Meaning: "the job failed to start and was to be retried"},
	-4: {Name: "JOB_EXEC_INITABT", State: job.Failed,
		Meaning: "the job was aborted when MoM started up"},
	-5: {Name: "JOB_EXEC_INITRST", State: job.Failed,
		Meaning: "the job was aborted when MoM started up (checkpointed)"},
	-6: {Name: "JOB_EXEC_INITRMG", State: job.Failed,
		Meaning: "the job was aborted when MoM started up (migratable)"},
	-7: {Name: "JOB_EXEC_BADRESRT", State: job.Failed,
		Meaning: "restarting the job failed"},
	-10: {Name: "JOB_EXEC_FAILUID", State: job.Failed,
		Meaning: "the job's user or group id is invalid"},
	-11: {Name: "JOB_EXEC_RERUN", State: job.Failed,
		Meaning: "the job was rerun"},
	-12: {Name: "JOB_EXEC_CHKP", State: job.Failed,
		Meaning: "the job was checkpointed and killed"},
	-13: {Name: "JOB_EXEC_FAIL_PASSWORD", State: job.Failed,
		Meaning: "the job's password is wrong"},
	-14: {Name: "JOB_EXEC_RERUN_SIS_FAIL", State: job.Failed,
		Meaning: "the job was rerun after a sister node failed"},
	-15: {Name: "JOB_EXEC_QUERST", State: job.Failed,
		Meaning: "the job was requeued to restart from a checkpoint"},
	-16: {Name: "JOB_EXEC_FAILHOOK_RERUN", State: job.Failed,
		Meaning: "a hook refused to start the job (rerun)"},
	-17: {Name: "JOB_EXEC_FAILHOOK_DELETE", State: job.Failed,
		Meaning: "a hook refused to start the job (delete)"},
	-18: {Name: "JOB_EXEC_HOOK_RERUN", State: job.Failed,
		Meaning: "a hook asked for the job to be requeued"},
	-19: {Name: "JOB_EXEC_HOOK_DELETE", State: job.Failed,
		Meaning: "a hook asked for the job to be deleted"},
	-20: {Name: "JOB_EXEC_RERUN_MS_FAIL", State: job.Failed,
		Meaning: "the job's mother superior connection failed"},
	-21: {Name: "JOB_EXEC_FAIL_SECURITY", State: job.Failed,
		Meaning: "a security check of the PBS directory failed"},
	-22: {Name: "JOB_EXEC_HOOKERROR", State: job.Failed,
		Meaning: "a hook failed or timed out"},
	-23: {Name: "JOB_EXEC_FAIL_KRB5", State: job.Failed,
		Meaning: "no Kerberos credentials were supplied"},
	-24: {Name: "JOB_EXEC_KILL_NCPUS_BURST", State: job.Failed,
		Meaning: "killed for exceeding its ncpus (burst)"},
	-25: {Name: "JOB_EXEC_KILL_NCPUS_SUM", State: job.Failed,
		Meaning: "killed for exceeding its ncpus (sum)"},
	-26: {Name: "JOB_EXEC_KILL_VMEM", State: job.Failed,
		Meaning: "killed for exceeding its vmem"},
	-27: {Name: "JOB_EXEC_KILL_MEM", State: job.Failed,
		Meaning: "killed for exceeding its mem"},
	-28: {Name: "JOB_EXEC_KILL_CPUT", State: job.Failed,
		Meaning: "killed for exceeding its cput"},
	-29: {Name: "JOB_EXEC_KILL_WALLTIME", State: job.Timeout,
		Meaning: "killed for exceeding its walltime"},
	-30: {Name: "JOB_EXEC_JOINJOB", State: job.Failed,
		Meaning: "joining the job's sister nodes failed"},
}

// signalBase is what PBS and Torque add to a signal number in Exit_status when the job
// was killed by that signal (271 is SIGTERM).
const signalBase = 256

// EndState reads the exit status of a job the server reports as finished:
//
//   - 0 is completed;
//   - 1-255 is failed with that exit code (a script that ran a command killed by signal N
//     exits 128+N itself, which is still its exit code);
//   - above 256 the job was killed by signal status-256: failed, exit code null;
//   - exactly 256 would be "killed by signal 0", which no signal is and no exit() can
//     produce (exit keeps the low byte): failed with neither code nor signal, and the
//     reason says why, rather than guess at success;
//   - below 0 the scheduler ended the job or never started it; codes (the flavour's
//     table, ExecCodes for PBS Pro) says which, and its state (timeout for the walltime
//     kill). The number goes into the reason, not into ExitCode, because it is not the
//     script's; an unlisted negative is failed.
func EndState(status int, codes map[int]ExecCode) (st job.State, exitCode, signal *int,
	reason string) {
	switch {
	case status == 0:
		return job.Completed, &status, nil, ""
	case status > 0 && status < signalBase:
		return job.Failed, &status, nil, ""
	case status == signalBase:
		return job.Failed, nil, nil, "exit status 256 is neither an exit code (0-255) " +
			"nor a signal (256+N)"
	case status > signalBase:
		sig := status - signalBase
		return job.Failed, nil, &sig, fmt.Sprintf("killed by signal %d", sig)
	}
	if c, ok := codes[status]; ok {
		return c.State, nil, nil, fmt.Sprintf("exit status %d (%s): %s", status, c.Name,
			c.Meaning)
	}
	return job.Failed, nil, nil, fmt.Sprintf("exit status %d: the scheduler ended the job "+
		"(a negative status is not the script's)", status)
}

// EndedWithoutStatus fills in a job the server reports as finished without an exit
// status: the Slurm Torque wrappers never print exit_status, and a PBS job deleted before
// it ran has none. The server will not run it again (Terminal), but it does not say how
// the job ended, and assuming success would turn every failure into a completed job. So
// the job is State Completing, the state in which the daemon reads the exit-status file
// the batch script wrote and checks the outputs; a job that never ran has no such file and
// fails there.
func EndedWithoutStatus(r *Record) {
	r.Outcome, r.State, r.Terminal = OutcomeJob, job.Completing, true
	r.ExitCode, r.Signal = nil, nil
	why := fmt.Sprintf("job_state %s without an exit status: read the job's exit-status file",
		r.RawState)
	if r.Reason == "" {
		r.Reason = why
	} else {
		r.Reason = Clip(why + "; " + r.Reason)
	}
}
