//! perpool-localnet: a local Solana validator that runs the perpool program natively inside
//! the Agave runtime and serves the standard JSON-RPC. State lives in memory only.

mod chain;
mod fixtures;
mod native;
mod pubsub;
mod rpc;

use {
    clap::Parser,
    solana_keypair::Keypair,
    solana_signer::Signer,
    std::{
        net::{IpAddr, SocketAddr},
        path::{Path, PathBuf},
        sync::Arc,
        time::{Duration, Instant},
    },
};

#[derive(Parser)]
#[command(version, about = "Local Solana validator with the perpool program built in (state in memory)")]
struct Args {
    /// JSON-RPC port (HTTP)
    #[arg(long, default_value_t = 8899)]
    port: u16,
    /// WebSocket (pubsub) port; default: the RPC port + 1
    #[arg(long)]
    ws_port: Option<u16>,
    /// Address to bind
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Slot duration in milliseconds
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    slot_ms: u64,
    /// Directory for the faucet keypair (state itself is never written to disk)
    #[arg(long, default_value = ".localnet")]
    ledger: PathBuf,
    /// Start from genesis (always the case: state lives in memory)
    #[arg(long)]
    reset: bool,
    /// Load an account from a JSON file (as `solana account --output json` writes);
    /// ADDRESS "-" takes the address from the file
    #[arg(long, num_args = 2, value_names = ["ADDRESS", "FILE"], action = clap::ArgAction::Append)]
    account: Vec<String>,
    /// Print only errors
    #[arg(long)]
    quiet: bool,
}

fn load_or_create_faucet(path: &Path) -> Result<Keypair, String> {
    if path.exists() {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let bytes: Vec<u8> = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        return Keypair::try_from(bytes.as_slice()).map_err(|e| format!("{}: {e}", path.display()));
    }
    let keypair = Keypair::new();
    let json = serde_json::to_string(&keypair.to_bytes().to_vec()).unwrap();
    std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(keypair)
}

/// The pubsub listener: `--ws-port` if given (it must be free), else the RPC port + 1 as
/// the real node; if that one is taken, any free port (the printed URL names it).
fn bind_ws(runtime: &tokio::runtime::Runtime, args: &Args) -> Result<tokio::net::TcpListener, String> {
    let bind = |port: u16| runtime.block_on(tokio::net::TcpListener::bind(SocketAddr::new(args.bind, port)));
    if let Some(port) = args.ws_port {
        return bind(port).map_err(|e| format!("cannot listen on websocket port {port}: {e}"));
    }
    let preferred = args.port.checked_add(1).filter(|_| args.port != 0);
    if let Some(Ok(listener)) = preferred.map(bind) {
        return Ok(listener);
    }
    if let Some(port) = preferred {
        log::warn!("websocket port {port} is taken; using a free port instead");
    }
    bind(0).map_err(|e| format!("cannot listen for websockets: {e}"))
}

fn fail(message: String) -> ! {
    eprintln!("perpool-localnet: {message}");
    std::process::exit(1);
}

fn main() {
    let started = Instant::now();
    let args = Args::parse();
    std::fs::create_dir_all(&args.ledger).unwrap_or_else(|e| fail(format!("{}: {e}", args.ledger.display())));
    let faucet_path = args.ledger.join("faucet-keypair.json");
    let faucet = load_or_create_faucet(&faucet_path).unwrap_or_else(|e| fail(e));
    let faucet_path = std::fs::canonicalize(&faucet_path).unwrap_or(faucet_path);
    let mut accounts = Vec::new();
    for pair in args.account.chunks(2) {
        accounts.push(fixtures::load(&pair[0], Path::new(&pair[1])).unwrap_or_else(|e| fail(e)));
    }

    native::capture_program_stdout().unwrap_or_else(|e| fail(format!("stdout capture: {e}")));
    native::install_syscall_stubs();
    let default_filter = if args.quiet { "error" } else { "warn" };
    solana_logger::setup_with_default(default_filter);

    let faucet_pubkey = faucet.pubkey();
    let chain = chain::Chain::new(chain::ChainConfig { faucet, accounts });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let addr = SocketAddr::new(args.bind, args.port);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(addr))
        .unwrap_or_else(|e| fail(format!("cannot listen on {addr}: {e}")));

    let ws_listener = match bind_ws(&runtime, &args) {
        Ok(listener) => listener,
        Err(e) => fail(e),
    };
    let ws_addr = ws_listener.local_addr().unwrap_or_else(|e| fail(format!("websocket listener: {e}")));
    let pubsub = pubsub::PubSub::start(chain.clone()).unwrap_or_else(|e| fail(e));
    runtime.spawn(pubsub::serve(pubsub, ws_listener));

    let slot_chain = chain.clone();
    let slot_time = Duration::from_millis(args.slot_ms);
    std::thread::Builder::new()
        .name("slots".into())
        .spawn(move || {
            let mut next = Instant::now() + slot_time;
            loop {
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
                next += slot_time;
                slot_chain.advance_slot(0);
            }
        })
        .expect("slot thread");

    let rpc = Arc::new(rpc::Rpc { chain, rpc_addr: addr, pubsub_addr: Some(ws_addr) });
    if !args.quiet {
        native::console_line(&format!("perpool-localnet {}", env!("CARGO_PKG_VERSION")));
        native::console_line(&format!("RPC URL: http://{addr}"));
        native::console_line(&format!("WebSocket URL: ws://{ws_addr}"));
        native::console_line(&format!("Program Id: {}", perpool::ID));
        native::console_line(&format!("Faucet keypair: {} ({faucet_pubkey})", faucet_path.display()));
        native::console_line(&format!("Slot time: {} ms; state lives in memory and starts from genesis on every start", args.slot_ms));
        native::console_line(&format!("Startup: {} ms", started.elapsed().as_millis()));
    }
    native::console_line("Ready");
    runtime.block_on(rpc::serve(rpc, listener));
}
