"""The command modules; each registers its subcommands with `register(sub, common)`."""
