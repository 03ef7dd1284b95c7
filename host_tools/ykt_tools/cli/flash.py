"""`ykt flash --port P --baud B --board B --firmware MICROPYTHON.bin
[--chip esp32|esp32s3] [--no-deploy] [provision options]`: erase the chip,
write the stock MicroPython image (esptool's Python API), then deploy the
firmware and, when --device-id is given, provision the device.
`ykt flash ... --image firmware.bin|BUILD_DIR`: the same with a full image of
the board's own MicroPython build (boards/esp32/*, the firmware frozen in):
checked against the board file first; afterwards only board.json is pushed
(code on the file system would shadow the frozen package, docs/images.md).
Exit 2 bad input, 1 flash/device error."""
import sys
import time

from ykt_tools.cli.provision import add_identity_args


def register(sub):
    p = sub.add_parser("flash", help="erase + write MicroPython (stock, or the board's image), then deploy and provision")
    p.add_argument("--port", "-p", required=True, help="serial port (e.g. /dev/ttyUSB0)")
    p.add_argument("--baud", "-b", type=int, default=460800, help="flashing baud rate (default 460800)")
    p.add_argument("--board", required=True, help="board name (boards/<name>.json)")
    img = p.add_mutually_exclusive_group(required=True)
    img.add_argument("--firmware", help="stock MicroPython .bin for the chip (micropython.org/download)")
    img.add_argument("--image", help="the board's own MicroPython image, firmware frozen in: the build's merged "
                                     "firmware.bin (or `esptool merge_bin` output) or its ESP-IDF build folder")
    p.add_argument("--chip", choices=("esp32", "esp32s3"), default=None, help="default: the board file's mcu")
    p.add_argument("--repl-baud", type=int, default=115200, help="MicroPython REPL baud for deploy (default 115200)")
    p.add_argument("--no-deploy", action="store_true", help="only flash MicroPython")
    p.add_argument("--dry-run", action="store_true", help="print the esptool steps and stop")
    add_identity_args(p, required=False)
    p.add_argument("--backoffice", default=None, help="with --device-id: back office URL (see ykt provision)")
    p.add_argument("--db", default=None)
    p.add_argument("--admin-url", default=None)
    p.add_argument("--operator-file", default=None)
    p.add_argument("--wifi-ssid", default=None)
    p.add_argument("--wifi-key-file", default=None)
    p.add_argument("--insecure-dev", action="store_true",
                   help="development board: provision although flash/NVS encryption is off (see ykt provision)")
    p.set_defaults(func=_run, force=False, secure=False)


def _run(args):
    from ykt_tools.device import deploy
    from ykt_tools.device import flash

    try:
        if args.image:
            plan = flash.plan_image(args.port, args.baud, args.board, args.image, args.chip)
        else:
            plan = flash.plan(args.port, args.baud, args.board, args.firmware, args.chip)
        if args.device_id is not None and (args.entry is None or not args.backoffice):
            raise flash.FlashError("--device-id needs --entry and --backoffice (see ykt provision --help)")
    except (flash.FlashError, deploy.DeployError) as e:
        print("ykt flash: %s" % e, file=sys.stderr)
        return 2
    if args.dry_run:
        for a in plan["argv"]:
            print("esptool " + " ".join(a))
        return 0
    try:
        flash.run(plan, progress=flash.progress_enabled())
    except flash.FlashError as e:
        print("ykt flash: %s" % e, file=sys.stderr)
        return 1
    print("flashed %s (%d bytes at %s) on %s" % ("the image" if args.image else "MicroPython", plan["size"],
                                              ", ".join("0x%x" % w[0] for w in plan["writes"]), args.port))
    if args.no_deploy:
        return 0
    time.sleep(2.0)  # first boot of a fresh MicroPython formats its filesystem
    from ykt_tools.cli import deploy as cli_deploy
    from ykt_tools.cli import provision as cli_provision

    args.config, args.bundle, args.json = None, None, False
    args.baud = args.repl_baud
    rc = _push_board(args) if args.image else cli_deploy._run(args)
    if rc or args.device_id is None:
        return rc
    args.no_reset = False
    return cli_provision._run(args)


def _push_board(args):
    """After an image: the code is frozen in it, so only board.json goes onto
    the file system (a ykt/ folder there would replace the frozen package)."""
    from ykt_tools.device import deploy
    from ykt_tools.device.devconn import Device, DeviceError

    try:
        with Device(args.port, args.baud) as dev:
            rep = deploy.deploy(dev, args.board, built=[])
    except (DeviceError, deploy.DeployError) as e:
        print("ykt flash: %s" % e, file=sys.stderr)
        return 1
    print("pushed board.json (%d file, the code is frozen in the image)" % rep["files"])
    return 0
