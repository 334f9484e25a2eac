import time
def test_smoke(build, deal_manager, provider, clock, signers, market):
    t=time.time()
    offer_id, peers = build.offer(provider, cus=(8,))
    deal_id = build.deal()
    print("setup", time.time()-t)
    t=time.time()
    r = deal_manager.matchDeal(deal_id, peers, sender=provider)
    print("match", time.time()-t)
    t=time.time()
    for _ in range(10):
        deal_manager.getDeal(deal_id)
    print("10 views", time.time()-t)
    t=time.time()
    clock.advance(1)
    print("advance", time.time()-t)
    w = deal_manager.dealWorkerIds(deal_id)[0]
    t=time.time()
    deal_manager.submitEpochProof(w, clock.epoch()-1, b"\x00"*32, 1, 1, sender=signers[0])
    print("proof", time.time()-t)
    print(deal_manager.getDeal(deal_id))
    print(deal_manager.getWorker(w))
    assert deal_manager.getWorker(w).active
