# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_anycastd_global_optspecs
    string join \n c/config= h/help V/version
end

function __fish_anycastd_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_anycastd_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_anycastd_using_subcommand
    set -l cmd (__fish_anycastd_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c anycastd -n "__fish_anycastd_needs_command" -s c -l config -d 'Config file, YAML (.yaml/.yml) or JSON (.json)' -r -F
complete -c anycastd -n "__fish_anycastd_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c anycastd -n "__fish_anycastd_needs_command" -s V -l version -d 'Print version'
complete -c anycastd -n "__fish_anycastd_needs_command" -f -a "run" -d 'Run the daemon (the default)'
complete -c anycastd -n "__fish_anycastd_needs_command" -f -a "check-config" -d 'Validate the config file, print a summary, and exit 0 (valid) or 2 (not)'
complete -c anycastd -n "__fish_anycastd_needs_command" -f -a "status" -d 'Ask a running anycastd for its state (GET /status) and print it as tables'
complete -c anycastd -n "__fish_anycastd_needs_command" -f -a "healthcheck" -d 'Ask a running anycastd\'s /healthz; exit 0 (healthy) or 1 (not). For container healthchecks: the image has no curl'
complete -c anycastd -n "__fish_anycastd_needs_command" -f -a "drain" -d 'Drain services: their routes carry the draining attributes (GRACEFUL_SHUTDOWN) for announcer.drain_linger, then are withdrawn. Remembered across restarts'
complete -c anycastd -n "__fish_anycastd_needs_command" -f -a "undrain" -d 'Undrain services: they return at once to what their checks say'
complete -c anycastd -n "__fish_anycastd_needs_command" -f -a "reload" -d 'Make the running daemon read its config file again; exit 2 when it refuses it. A file that does not parse is refused by the daemon too (found at the control socket the file\'s `control:` lines name, else the default): it logs the refusal and `status` shows it'
complete -c anycastd -n "__fish_anycastd_needs_command" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c anycastd -n "__fish_anycastd_needs_command" -f -a "config-schema" -d 'Print the JSON Schema of the config file, for editors and validators'
complete -c anycastd -n "__fish_anycastd_needs_command" -f -a "manpages" -d 'Write the man pages (roff), one per command, into a directory'
complete -c anycastd -n "__fish_anycastd_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c anycastd -n "__fish_anycastd_using_subcommand run" -s c -l config -d 'Config file, YAML (.yaml/.yml) or JSON (.json)' -r -F
complete -c anycastd -n "__fish_anycastd_using_subcommand run" -s h -l help -d 'Print help'
complete -c anycastd -n "__fish_anycastd_using_subcommand check-config" -s c -l config -d 'Config file, YAML (.yaml/.yml) or JSON (.json)' -r -F
complete -c anycastd -n "__fish_anycastd_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c anycastd -n "__fish_anycastd_using_subcommand status" -s a -l address -d 'The daemon\'s metrics address, host:port; default: metrics.address of the config' -r
complete -c anycastd -n "__fish_anycastd_using_subcommand status" -s c -l config -d 'Config file, YAML (.yaml/.yml) or JSON (.json)' -r -F
complete -c anycastd -n "__fish_anycastd_using_subcommand status" -l json -d 'Print the JSON document as it is'
complete -c anycastd -n "__fish_anycastd_using_subcommand status" -s h -l help -d 'Print help'
complete -c anycastd -n "__fish_anycastd_using_subcommand healthcheck" -s a -l address -d 'The daemon\'s metrics address, host:port; default: metrics.address of the config' -r
complete -c anycastd -n "__fish_anycastd_using_subcommand healthcheck" -l timeout -d 'How long to wait for the answer' -r
complete -c anycastd -n "__fish_anycastd_using_subcommand healthcheck" -s c -l config -d 'Config file, YAML (.yaml/.yml) or JSON (.json)' -r -F
complete -c anycastd -n "__fish_anycastd_using_subcommand healthcheck" -s h -l help -d 'Print help'
complete -c anycastd -n "__fish_anycastd_using_subcommand drain" -l socket -d 'The daemon\'s control socket; default: control.socket of the config' -r -F
complete -c anycastd -n "__fish_anycastd_using_subcommand drain" -s c -l config -d 'Config file, YAML (.yaml/.yml) or JSON (.json)' -r -F
complete -c anycastd -n "__fish_anycastd_using_subcommand drain" -l all -d 'Drain every service (also those a reload adds later)'
complete -c anycastd -n "__fish_anycastd_using_subcommand drain" -l force -d 'Drain even where the fleet guard would hold'
complete -c anycastd -n "__fish_anycastd_using_subcommand drain" -s h -l help -d 'Print help'
complete -c anycastd -n "__fish_anycastd_using_subcommand undrain" -l socket -d 'The daemon\'s control socket; default: control.socket of the config' -r -F
complete -c anycastd -n "__fish_anycastd_using_subcommand undrain" -s c -l config -d 'Config file, YAML (.yaml/.yml) or JSON (.json)' -r -F
complete -c anycastd -n "__fish_anycastd_using_subcommand undrain" -l all -d 'Undrain everything `drain` drained'
complete -c anycastd -n "__fish_anycastd_using_subcommand undrain" -s h -l help -d 'Print help'
complete -c anycastd -n "__fish_anycastd_using_subcommand reload" -l socket -d 'The daemon\'s control socket; default: control.socket of the config' -r -F
complete -c anycastd -n "__fish_anycastd_using_subcommand reload" -s c -l config -d 'Config file, YAML (.yaml/.yml) or JSON (.json)' -r -F
complete -c anycastd -n "__fish_anycastd_using_subcommand reload" -s h -l help -d 'Print help'
complete -c anycastd -n "__fish_anycastd_using_subcommand completions" -s c -l config -d 'Config file, YAML (.yaml/.yml) or JSON (.json)' -r -F
complete -c anycastd -n "__fish_anycastd_using_subcommand completions" -s h -l help -d 'Print help'
complete -c anycastd -n "__fish_anycastd_using_subcommand config-schema" -s c -l config -d 'Config file, YAML (.yaml/.yml) or JSON (.json)' -r -F
complete -c anycastd -n "__fish_anycastd_using_subcommand config-schema" -s h -l help -d 'Print help'
complete -c anycastd -n "__fish_anycastd_using_subcommand manpages" -s c -l config -d 'Config file, YAML (.yaml/.yml) or JSON (.json)' -r -F
complete -c anycastd -n "__fish_anycastd_using_subcommand manpages" -s h -l help -d 'Print help'
complete -c anycastd -n "__fish_anycastd_using_subcommand help; and not __fish_seen_subcommand_from run check-config status healthcheck drain undrain reload completions config-schema manpages help" -f -a "run" -d 'Run the daemon (the default)'
complete -c anycastd -n "__fish_anycastd_using_subcommand help; and not __fish_seen_subcommand_from run check-config status healthcheck drain undrain reload completions config-schema manpages help" -f -a "check-config" -d 'Validate the config file, print a summary, and exit 0 (valid) or 2 (not)'
complete -c anycastd -n "__fish_anycastd_using_subcommand help; and not __fish_seen_subcommand_from run check-config status healthcheck drain undrain reload completions config-schema manpages help" -f -a "status" -d 'Ask a running anycastd for its state (GET /status) and print it as tables'
complete -c anycastd -n "__fish_anycastd_using_subcommand help; and not __fish_seen_subcommand_from run check-config status healthcheck drain undrain reload completions config-schema manpages help" -f -a "healthcheck" -d 'Ask a running anycastd\'s /healthz; exit 0 (healthy) or 1 (not). For container healthchecks: the image has no curl'
complete -c anycastd -n "__fish_anycastd_using_subcommand help; and not __fish_seen_subcommand_from run check-config status healthcheck drain undrain reload completions config-schema manpages help" -f -a "drain" -d 'Drain services: their routes carry the draining attributes (GRACEFUL_SHUTDOWN) for announcer.drain_linger, then are withdrawn. Remembered across restarts'
complete -c anycastd -n "__fish_anycastd_using_subcommand help; and not __fish_seen_subcommand_from run check-config status healthcheck drain undrain reload completions config-schema manpages help" -f -a "undrain" -d 'Undrain services: they return at once to what their checks say'
complete -c anycastd -n "__fish_anycastd_using_subcommand help; and not __fish_seen_subcommand_from run check-config status healthcheck drain undrain reload completions config-schema manpages help" -f -a "reload" -d 'Make the running daemon read its config file again; exit 2 when it refuses it. A file that does not parse is refused by the daemon too (found at the control socket the file\'s `control:` lines name, else the default): it logs the refusal and `status` shows it'
complete -c anycastd -n "__fish_anycastd_using_subcommand help; and not __fish_seen_subcommand_from run check-config status healthcheck drain undrain reload completions config-schema manpages help" -f -a "completions" -d 'Print a shell completion script (bash, zsh, fish, elvish, powershell)'
complete -c anycastd -n "__fish_anycastd_using_subcommand help; and not __fish_seen_subcommand_from run check-config status healthcheck drain undrain reload completions config-schema manpages help" -f -a "config-schema" -d 'Print the JSON Schema of the config file, for editors and validators'
complete -c anycastd -n "__fish_anycastd_using_subcommand help; and not __fish_seen_subcommand_from run check-config status healthcheck drain undrain reload completions config-schema manpages help" -f -a "manpages" -d 'Write the man pages (roff), one per command, into a directory'
complete -c anycastd -n "__fish_anycastd_using_subcommand help; and not __fish_seen_subcommand_from run check-config status healthcheck drain undrain reload completions config-schema manpages help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
