"""Layer 4: the JSON-RPC and REST interface, Bitcoin Core's dialect.

Method groups live in one module each and register through ``registry``; they reach the node only
through the ``NodeServices`` facade that ``node.py`` builds. Errors are ``RpcError(code, message)``
with Core's codes. Handlers run on the node's event loop thread, one at a time per call.
"""
