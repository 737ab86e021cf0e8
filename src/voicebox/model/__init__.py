"""The Voicebox model: text-guided flow-matching speech infilling (ours, torch).

Heavy imports stay inside the submodules so `import voicebox.model` is cheap.
"""
