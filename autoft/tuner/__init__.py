"""The AutoDL Finetuner: ``hub autofinetune`` / ``autofinetune`` (cli), the trial pool (runner),
the journal and resume (journal), the search loop (search_loop) and its outputs (output).

Nothing here imports Paddle: trials are separate processes.
"""
