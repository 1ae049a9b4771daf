//! Hosting the perpool program natively inside the Agave runtime.
//!
//! The program is registered as a builtin (the mechanism `solana_program_test::processor!`
//! uses). Two gaps of native execution are closed here:
//! - `msg!` compiles to `println!` off-SBF, so the process's stdout is redirected into a pipe
//!   and every line the program prints becomes a `Program log:` line of the running
//!   transaction's log collector;
//! - `sol_log_data` (Anchor's `emit!`) goes through the process-wide syscall stubs, which we
//!   wrap to write `Program data:` lines.
//!
//! Transactions that can run program code are executed one at a time (see `Chain`), so the
//! captured output always belongs to the transaction currently executing.

use {
    solana_account_info::AccountInfo,
    solana_instruction::Instruction,
    solana_log_collector::ic_msg,
    solana_program_error::ProgramResult,
    solana_program_runtime::{
        invoke_context::{BuiltinFunctionWithContext, InvokeContext},
        loaded_programs::ProgramCacheEntry,
        stable_log,
    },
    solana_program_test::{get_runtime_environment_key, invoke_builtin_function, EbpfVm},
    solana_pubkey::Pubkey,
    solana_sysvar::program_stubs::{set_syscall_stubs, SyscallStubs},
    std::{
        cell::Cell,
        fs::File,
        io::{Read, Write},
        os::fd::{FromRawFd, RawFd},
        sync::{Mutex, OnceLock},
    },
};

thread_local! {
    /// The InvokeContext of the transaction running on this thread, set on builtin entry.
    static CURRENT_CONTEXT: Cell<usize> = const { Cell::new(0) };
}

/// Console for the validator's own output (the real stdout, saved before redirection).
static CONSOLE: OnceLock<Mutex<File>> = OnceLock::new();
/// Read end of the pipe that now backs fd 1, plus bytes of a not yet finished line.
static CAPTURE: OnceLock<Mutex<(File, Vec<u8>)>> = OnceLock::new();

/// Writes a line to the validator's console (stdout as the user launched it).
pub fn console_line(line: &str) {
    match CONSOLE.get() {
        Some(console) => {
            let mut out = console.lock().unwrap();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        None => println!("{line}"),
    }
}

fn check(ret: libc::c_int, what: &str) -> std::io::Result<libc::c_int> {
    if ret < 0 {
        let err = std::io::Error::last_os_error();
        return Err(std::io::Error::new(err.kind(), format!("{what}: {err}")));
    }
    Ok(ret)
}

/// Redirects fd 1 into a non-blocking pipe. Must run before any program code executes.
pub fn capture_program_stdout() -> std::io::Result<()> {
    std::io::stdout().flush()?;
    unsafe {
        let saved: RawFd = check(libc::dup(1), "dup stdout")?;
        let mut fds = [0 as RawFd; 2];
        check(libc::pipe(fds.as_mut_ptr()), "pipe")?;
        // A roomy pipe so a chatty instruction never blocks on a full buffer between drains.
        libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 1 << 20);
        let flags = check(libc::fcntl(fds[0], libc::F_GETFL), "fcntl")?;
        check(libc::fcntl(fds[0], libc::F_SETFL, flags | libc::O_NONBLOCK), "fcntl")?;
        check(libc::dup2(fds[1], 1), "dup2")?;
        libc::close(fds[1]);
        let _ = CONSOLE.set(Mutex::new(File::from_raw_fd(saved)));
        let _ = CAPTURE.set(Mutex::new((File::from_raw_fd(fds[0]), Vec::new())));
    }
    Ok(())
}

/// Lines the program printed since the last drain.
fn drain_captured_lines() -> Vec<String> {
    let Some(capture) = CAPTURE.get() else {
        return Vec::new();
    };
    let _ = std::io::stdout().flush();
    let mut guard = capture.lock().unwrap();
    let (pipe, pending) = &mut *guard;
    let mut chunk = [0u8; 8192];
    loop {
        match pipe.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(_) => break, // WouldBlock: nothing more buffered
        }
    }
    let mut lines = Vec::new();
    while let Some(end) = pending.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = pending.drain(..=end).collect();
        lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
    }
    lines
}

fn with_current_context(f: impl FnOnce(&mut InvokeContext)) {
    let ptr = CURRENT_CONTEXT.with(|c| c.get());
    if ptr != 0 {
        // SAFETY: set from the live `&mut InvokeContext` of the builtin call on this thread;
        // stubs run only while that call is on the stack.
        let ctx = unsafe { &mut *(ptr as *mut InvokeContext) };
        f(ctx);
    }
}

/// Moves what the program printed into the transaction's log as `Program log:` lines.
fn flush_program_output() {
    let lines = drain_captured_lines();
    if lines.is_empty() {
        return;
    }
    with_current_context(|ctx| {
        for line in lines {
            ic_msg!(ctx, "Program log: {}", line);
        }
    });
}

/// Anchor's `entry` ties the accounts' lifetimes together; the runtime's
/// `ProcessInstruction` does not. Both borrows live for the whole call.
fn perpool_entry(program_id: &Pubkey, accounts: &[AccountInfo], data: &[u8]) -> ProgramResult {
    let accounts: &[AccountInfo] = unsafe { std::mem::transmute(accounts) };
    let result = perpool::entry(program_id, accounts, data);
    flush_program_output();
    result
}

fn perpool_builtin(vm: *mut EbpfVm<InvokeContext<'static>>, _a: u64, _b: u64, _c: u64, _d: u64, _e: u64) {
    // Same address arithmetic as `solana_program_test::processor!`.
    let vm = unsafe {
        &mut *((vm as *mut u64).offset(-(get_runtime_environment_key() as isize))
            as *mut EbpfVm<InvokeContext>)
    };
    let ctx_ptr = &mut *vm.context_object_pointer as *mut InvokeContext as usize;
    let outer = CURRENT_CONTEXT.with(|c| c.replace(ctx_ptr));
    let log_start = log_len(vm.context_object_pointer);
    vm.program_result = invoke_builtin_function(perpool_entry, vm.context_object_pointer)
        .map_err(solana_program_test::EbpfError::SyscallError)
        .into();
    drop_duplicate_frame_lines(vm.context_object_pointer, log_start, &perpool::ID, true);
    CURRENT_CONTEXT.with(|c| c.set(outer));
}

fn log_len(ctx: &InvokeContext) -> usize {
    ctx.get_log_collector().map(|l| l.borrow().messages.len()).unwrap_or(0)
}

/// The runtime already logs every program's `invoke [n]` and `success`/`failed` lines;
/// program-test's builtin bridge and CPI stub log them a second time. Keep the runtime's:
/// drop the duplicate `invoke` line written at `start` and, when `duplicate_end`, a trailing
/// `success`/`failed` line of `program_id`.
fn drop_duplicate_frame_lines(ctx: &InvokeContext, start: usize, program_id: &Pubkey, duplicate_end: bool) {
    let Some(collector) = ctx.get_log_collector() else { return };
    let mut collector = collector.borrow_mut();
    let prefix = format!("Program {program_id} ");
    let is_frame_end = |line: &str| {
        line.strip_prefix(&prefix)
            .is_some_and(|rest| rest == "success" || rest.starts_with("failed: "))
    };
    if duplicate_end && collector.messages.len() > start + 1 && collector.messages.last().is_some_and(|l| is_frame_end(l)) {
        let line = collector.messages.pop().unwrap_or_default();
        collector.bytes_written = collector.bytes_written.saturating_sub(line.len());
    }
    if collector
        .messages
        .get(start)
        .is_some_and(|l| l.starts_with(&prefix) && l.contains(" invoke ["))
    {
        let line = collector.messages.remove(start);
        collector.bytes_written = collector.bytes_written.saturating_sub(line.len());
    }
}

/// The perpool program as a runtime builtin.
pub fn perpool_program() -> (Pubkey, &'static str, ProgramCacheEntry) {
    let function: BuiltinFunctionWithContext = perpool_builtin;
    (
        perpool::ID,
        "perpool",
        ProgramCacheEntry::new_builtin(0, "perpool".len(), function),
    )
}

/// Wraps solana-program-test's stubs (which route CPI back into the runtime) so that program
/// output keeps its order relative to CPIs, and `sol_log_data` reaches the log collector.
struct LoggingStubs {
    inner: Box<dyn SyscallStubs>,
}

impl SyscallStubs for LoggingStubs {
    fn sol_log(&self, message: &str) {
        flush_program_output();
        self.inner.sol_log(message)
    }
    fn sol_log_compute_units(&self) {
        flush_program_output();
        self.inner.sol_log_compute_units()
    }
    fn sol_remaining_compute_units(&self) -> u64 {
        self.inner.sol_remaining_compute_units()
    }
    fn sol_invoke_signed(
        &self,
        instruction: &Instruction,
        account_infos: &[AccountInfo],
        signers_seeds: &[&[&[u8]]],
    ) -> ProgramResult {
        flush_program_output();
        let mut start = 0;
        with_current_context(|ctx| start = log_len(ctx));
        let result = self.inner.sol_invoke_signed(instruction, account_infos, signers_seeds);
        // The stub logs `success` only when the call succeeded; on failure the runtime's
        // `failed` line is the last one and stays.
        with_current_context(|ctx| {
            drop_duplicate_frame_lines(ctx, start, &instruction.program_id, result.is_ok())
        });
        result
    }
    fn sol_get_sysvar(&self, sysvar_id_addr: *const u8, var_addr: *mut u8, offset: u64, length: u64) -> u64 {
        self.inner.sol_get_sysvar(sysvar_id_addr, var_addr, offset, length)
    }
    fn sol_get_clock_sysvar(&self, var_addr: *mut u8) -> u64 {
        self.inner.sol_get_clock_sysvar(var_addr)
    }
    fn sol_get_epoch_schedule_sysvar(&self, var_addr: *mut u8) -> u64 {
        self.inner.sol_get_epoch_schedule_sysvar(var_addr)
    }
    fn sol_get_fees_sysvar(&self, var_addr: *mut u8) -> u64 {
        self.inner.sol_get_fees_sysvar(var_addr)
    }
    fn sol_get_rent_sysvar(&self, var_addr: *mut u8) -> u64 {
        self.inner.sol_get_rent_sysvar(var_addr)
    }
    fn sol_get_epoch_rewards_sysvar(&self, var_addr: *mut u8) -> u64 {
        self.inner.sol_get_epoch_rewards_sysvar(var_addr)
    }
    fn sol_get_last_restart_slot(&self, var_addr: *mut u8) -> u64 {
        self.inner.sol_get_last_restart_slot(var_addr)
    }
    fn sol_get_epoch_stake(&self, vote_address: *const u8) -> u64 {
        self.inner.sol_get_epoch_stake(vote_address)
    }
    unsafe fn sol_memcpy(&self, dst: *mut u8, src: *const u8, n: usize) {
        self.inner.sol_memcpy(dst, src, n)
    }
    unsafe fn sol_memmove(&self, dst: *mut u8, src: *const u8, n: usize) {
        self.inner.sol_memmove(dst, src, n)
    }
    unsafe fn sol_memcmp(&self, s1: *const u8, s2: *const u8, n: usize, result: *mut i32) {
        self.inner.sol_memcmp(s1, s2, n, result)
    }
    unsafe fn sol_memset(&self, s: *mut u8, c: u8, n: usize) {
        self.inner.sol_memset(s, c, n)
    }
    fn sol_get_return_data(&self) -> Option<(Pubkey, Vec<u8>)> {
        self.inner.sol_get_return_data()
    }
    fn sol_set_return_data(&self, data: &[u8]) {
        self.inner.sol_set_return_data(data)
    }
    fn sol_log_data(&self, fields: &[&[u8]]) {
        flush_program_output();
        with_current_context(|ctx| {
            stable_log::program_data(&ctx.get_log_collector(), fields);
        });
    }
    fn sol_get_processed_sibling_instruction(&self, index: usize) -> Option<Instruction> {
        self.inner.sol_get_processed_sibling_instruction(index)
    }
    fn sol_get_stack_height(&self) -> u64 {
        self.inner.sol_get_stack_height()
    }
}

/// Holds the stubs slot for the instant between taking program-test's stubs and wrapping them.
struct Placeholder;
impl SyscallStubs for Placeholder {}

/// Installs solana-program-test's CPI stubs (they are set once, by its bank setup) and wraps
/// them with ours.
pub fn install_syscall_stubs() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Starting a throwaway ProgramTest is the public way to have its stubs installed; the
    // runtime (and the tasks ProgramTest spawned on it) is dropped right after.
    runtime.block_on(async {
        let _ = solana_program_test::ProgramTest::default().start().await;
    });
    drop(runtime);
    let inner = set_syscall_stubs(Box::new(Placeholder));
    set_syscall_stubs(Box::new(LoggingStubs { inner }));
}
